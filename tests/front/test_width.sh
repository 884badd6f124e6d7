#!/bin/sh
# The C sources stay within 100 columns (tabs every 8 columns, a UTF-8 character one column), as QBE's
# `make 80` keeps its own within 80: src/ (C, headers, the .def tables, the lexer, the grammar, the
# proto schema) and tests/unit/.  `make check-width` runs it alone.
. "$(dirname "$0")/setup.sh"
cd "$PTCC_SRCDIR" || exit 99
PY=${PYTHON:-/usr/bin/python3}
"$PY" - src/*.c src/*.h src/*.def src/*.l src/*.y src/proto/*.proto tests/unit/*.c <<'PYEOF' || fail "lines over 100 columns"
import sys
bad = 0
generated = ("src/lexer.c", "src/parser.c", "src/parser.h")
for path in sys.argv[1:]:
    if path in generated or path.endswith(".pb-c.c") or path.endswith(".pb-c.h"):
        continue
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            width = len(line.rstrip("\n").expandtabs(8))
            if width > 100:
                print(f"{path}:{number}: {width} columns")
                bad += 1
print(f"{len(sys.argv) - 1} files checked, {bad} lines over 100 columns")
sys.exit(1 if bad else 0)
PYEOF
