"""Doc tests: every command and output quoted in README.md, examples/README.md and docs/trace-format.md is
run and compared, so the documents cannot drift from what the tools do.

In a document (markdown), a code block (indented four spaces, or fenced with ```):

- with lines that start with `$ ` is a shell session: each command runs with bash in the document's
  scratch directory (a `cd` carries over to the next command), with the build tree's ptcc, ptcc-record
  and ptcc-verify first on PATH, and its output (stdout and stderr together) must be the lines after it,
  up to the next command.  A line `...` stands for any number of lines.  A number in scientific notation
  (an error figure such as 4.77e-06) matches one within a factor of 10: float round-off differs between
  CPUs, an order of magnitude does not.  A command must exit 0 unless its expected output has an
  `error:` or ptcc-verify's `verdict: FAIL`, and then must not.
- fenced as ```python is run with the Python that imports torch, in the scratch directory; it must exit 0.
- preceded by `<!-- doctest: excerpt FILE -->` must appear in FILE (relative to the scratch directory as
  the session left it): its parts between `...` lines each contiguously, in order.
- preceded by `<!-- doctest: skip -->` is not run (say why in the document's text).

`<!-- doctest$ COMMAND -->` runs a command that the reader does not need to see (it must exit 0).  The
scratch directory holds `examples`, a link to the source tree's.

    PTCC_DOCS="README.md" make check TESTS=tests/docs/test_docs.py     # one document
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import unittest
from dataclasses import dataclass, field
from typing import Optional

import ptcctest

DOCS = ["README.md", "examples/README.md", "docs/trace-format.md"]
SRCDIR = os.environ.get("PTCC_SRCDIR", os.getcwd())
BUILDDIR = os.environ.get("PTCC_BUILDDIR", SRCDIR)
PYTHON = os.environ.get("PYTHON", "/usr/bin/python3")
TIMEOUT = 600


@dataclass
class Block:
    line: int                    # where it starts in the document (1-based)
    lines: list[str]             # without the markdown indentation
    fence: str = ""              # "python" for ```python, "" otherwise
    directive: str = ""          # the `<!-- doctest: ... -->` just before it


@dataclass
class Step:
    """One thing to do, in document order: a block, or a hidden command."""
    line: int
    block: Optional[Block] = None
    hidden: str = ""


_DIRECTIVE = re.compile(r"^<!-- doctest: (.*) -->$")
_HIDDEN = re.compile(r"^<!-- doctest\$ (.*) -->$")


def parse(text: str) -> list[Step]:
    """The document's code blocks and hidden commands, in order."""
    lines = text.split("\n")
    steps: list[Step] = []
    directive = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        if _DIRECTIVE.match(line):
            directive = _DIRECTIVE.match(line)[1]
            i += 1
            continue
        if _HIDDEN.match(line):
            steps.append(Step(i + 1, hidden=_HIDDEN.match(line)[1]))
            i += 1
            continue
        if line.startswith("```"):
            fence = line[3:].strip()
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            steps.append(Step(i + 1, Block(i + 2, lines[i + 1:j], fence, directive)))
            directive = ""
            i = j + 1
            continue
        if line.startswith("    ") and (i == 0 or not lines[i - 1].strip()):
            j = i
            while j < len(lines) and (lines[j].startswith("    ") or
                                      (not lines[j].strip() and j + 1 < len(lines) and lines[j + 1].startswith("    "))):
                j += 1
            steps.append(Step(i + 1, Block(i + 1, [l[4:] for l in lines[i:j]], "", directive)))
            directive = ""
            i = j
            continue
        if line.strip():
            directive = "" if not line.startswith("<!--") else directive
        i += 1
    return steps


_SCI = re.compile(r"-?\d+(?:\.\d+)?e[-+]\d+")


def line_matches(want: str, got: str) -> bool:
    """Equal, but for numbers in scientific notation, which may differ by less than a factor of 10."""
    if want == got:
        return True
    wparts, gparts = _SCI.split(want), _SCI.split(got)
    if wparts != gparts:
        return False
    for w, g in zip(_SCI.findall(want), _SCI.findall(got)):
        a, b = abs(float(w)), abs(float(g))
        if (a == 0) != (b == 0) or (a and not 0.1 < b / a < 10):
            return False
    return True


def output_matches(want: list[str], got: list[str]) -> bool:
    """`want` against `got` line by line; a `...` line matches any number of lines."""
    if not want:
        return not got
    if want[0] == "...":
        return any(output_matches(want[1:], got[k:]) for k in range(len(got) + 1))
    return bool(got) and line_matches(want[0], got[0]) and output_matches(want[1:], got[1:])


def sessions(lines: list[str]) -> list[tuple[str, list[str]]]:
    """(command, expected output lines) of a shell session block."""
    out: list[tuple[str, list[str]]] = []
    for line in lines:
        if line.startswith("$ "):
            out.append((line[2:], []))
        elif out:
            out[-1][1].append(line)
    for _, want in out:
        while want and not want[-1].strip():
            want.pop()
    return out


def excerpt_found(part_lines: list[str], text_lines: list[str]) -> bool:
    """The parts of an excerpt (split at `...` lines) appear in the file, each contiguously, in order."""
    parts: list[list[str]] = [[]]
    for line in part_lines:
        if line.strip() == "...":
            parts.append([])
        else:
            parts[-1].append(line)
    at = 0
    for part in (p for p in parts if p):
        for k in range(at, len(text_lines) - len(part) + 1):
            if text_lines[k:k + len(part)] == part:
                at = k + len(part)
                break
        else:
            return False
    return True


@dataclass
class Shell:
    cwd: str
    env: dict = field(default_factory=dict)

    def run(self, command: str) -> tuple[int, list[str]]:
        with tempfile.NamedTemporaryFile("r", suffix=".pwd") as pwd:
            script = f"{{ {command}\n}} 2>&1; status=$?; pwd >{pwd.name}; exit $status"
            r = subprocess.run(["bash", "-c", script], cwd=self.cwd, env=self.env, stdout=subprocess.PIPE,
                               text=True, timeout=TIMEOUT)
            where = pwd.read().strip()
        if where:
            self.cwd = where
        return r.returncode, r.stdout.rstrip("\n").split("\n") if r.stdout.strip() else []


class Docs(unittest.TestCase):
    def test_documents(self) -> None:
        docs = os.environ.get("PTCC_DOCS", "").split() or DOCS
        for doc in docs:
            with self.subTest(doc=doc):
                self.check(doc)

    def check(self, doc: str) -> None:
        scratch = ptcctest.out_dir("docs", doc.replace("/", "_"))
        shutil.rmtree(scratch)
        os.makedirs(scratch)
        os.symlink(os.path.join(SRCDIR, "examples"), os.path.join(scratch, "examples"))
        env = dict(os.environ)
        env["PATH"] = os.pathsep.join([BUILDDIR, os.path.join(BUILDDIR, "src"), env.get("PATH", "")])
        env["PYTHONPATH"] = os.path.join(SRCDIR, "python")
        env["LC_ALL"] = "C.UTF-8"
        env.pop("PTCC_SRCDIR", None)
        shell = Shell(scratch, env)
        with open(os.path.join(SRCDIR, doc), encoding="utf-8") as f:
            steps = parse(f.read())
        ran = 0
        for step in steps:
            where = f"{doc}:{step.line}"
            if step.hidden:
                status, got = shell.run(step.hidden)
                self.assertEqual(status, 0, f"{where}: {step.hidden}\n" + "\n".join(got))
                continue
            block = step.block
            if block.directive == "skip":
                continue
            if block.directive.startswith("excerpt "):
                path = os.path.join(shell.cwd, block.directive[len("excerpt "):])
                with open(path, encoding="utf-8") as f:
                    text = f.read().split("\n")
                self.assertTrue(excerpt_found(block.lines, text), f"{where}: the block is not in {path}")
                ran += 1
            elif block.fence == "python":
                r = subprocess.run([PYTHON, "-c", "\n".join(block.lines)], cwd=shell.cwd, env=env,
                                   capture_output=True, text=True, timeout=TIMEOUT)
                self.assertEqual(r.returncode, 0, f"{where}: the Python block fails:\n{r.stderr}")
                ran += 1
            elif any(l.startswith("$ ") for l in block.lines):
                for command, want in sessions(block.lines):
                    status, got = shell.run(command)
                    shown = "\n".join(got)
                    self.assertTrue(output_matches(want, got),
                                    f"{where}: $ {command}\nwants:\n" + "\n".join(want) + f"\ngot:\n{shown}")
                    expects_error = any("error:" in l or l.startswith("verdict: FAIL") for l in want)
                    self.assertEqual(status != 0, expects_error, f"{where}: $ {command}: exit status {status}")
                    ran += 1
        print(f"{doc}: {ran} commands and blocks checked")
        self.assertGreater(ran, 0, f"{doc} has nothing to check")


class Matching(unittest.TestCase):
    """The matcher itself: it must be able to fail."""

    def test_lines(self) -> None:
        self.assertTrue(line_matches("max |Δ| 4.77e-06, max |ref| 5.94", "max |Δ| 2.86e-06, max |ref| 5.94"))
        self.assertFalse(line_matches("max |Δ| 4.77e-06, max |ref| 5.94", "max |Δ| 4.77e-04, max |ref| 5.94"))
        self.assertFalse(line_matches("max |ref| 5.94", "max |ref| 5.95"))
        self.assertTrue(output_matches(["a", "...", "d"], ["a", "b", "c", "d"]))
        self.assertFalse(output_matches(["a", "...", "d"], ["a", "b", "c"]))
        self.assertTrue(excerpt_found(["b", "...", "d"], ["a", "b", "c", "d"]))
        self.assertFalse(excerpt_found(["b", "a"], ["a", "b", "c", "d"]))


if __name__ == "__main__":
    ptcctest.main()
