#!/bin/sh
# make install and make uninstall: the build tree installed into a prefix under $PTCC_TEST_OUT; the README's
# example with the installed ptcc-record, ptcc and ptcc-verify alone, from a directory outside the tree; the installed
# script imports the installed package and never the build tree's (nor one ahead of it on PYTHONPATH); the
# man page; a DESTDIR install whose script names the final directories; make uninstall leaves no file.
. "$(dirname "$0")/setup.sh"
: "${PYTHON:=/usr/bin/python3}"
: "${PTCC_TEST_OUT:=$PTCC_BUILDDIR/tests/out}"

if ! "$PYTHON" -c 'import torch' >/dev/null 2>&1; then
	[ "${CI:-}" = true ] && fail "$PYTHON cannot import torch (scripts/install-deps installs python3-torch)"
	echo "SKIP: $PYTHON cannot import torch"
	exit 77
fi

# make in the build tree, on its own: not a part of the make that may be running this test (make check's
# flags, variables and job server stay out).  make check has built everything: this only installs.
mk() {
	(unset MAKEFLAGS MFLAGS MAKELEVEL; cd "$PTCC_BUILDDIR" && "${MAKE:-make}" "$@")
}

D=$PTCC_TEST_OUT/install
P=$D/prefix
rm -rf "$D"
mkdir -p "$D"

echo "make install prefix=$P"
mk install prefix="$P" >"$D/install.out" 2>&1 || { cat "$D/install.out"; fail "make install prefix=$P"; }
PYDIR=$(mk -s print-pythondir prefix="$P") || fail "make print-pythondir"
echo "the package's directory: $PYDIR"
case $PYDIR in
"$P"/*) ;;
*) fail "pythondir $PYDIR is not under the prefix $P" ;;
esac
for f in bin/ptcc bin/ptcc-record bin/ptcc-verify share/man/man1/ptcc.1 share/man/man1/ptcc-record.1 share/man/man1/ptcc-verify.1 share/doc/ptcc/README.md share/doc/ptcc/trace-format.md; do
	[ -f "$P/$f" ] || fail "make install wrote no $P/$f"
done
[ -x "$P/bin/ptcc-record" ] && [ -x "$P/bin/ptcc-verify" ] || fail "$P/bin/ptcc-record, ptcc-verify: not executable"
[ -f "$PYDIR/ptcc/record.py" ] && [ -f "$PYDIR/ptcc/cli.py" ] || fail "no ptcc package in $PYDIR"

echo "the installed ptcc-record names the installed package, not the source tree's"
grep -qF "_dir = \"$PYDIR\"" "$P/bin/ptcc-record" || { cat "$P/bin/ptcc-record"; fail "ptcc-record does not name $PYDIR"; }
grep -F "$PTCC_SRCDIR/python" "$P/bin/ptcc-record" && fail "the installed ptcc-record names the source tree"

echo "the README's example with the installed tools only, in $T"
cd "$T" || fail "cd $T"
PATH=$P/bin:$PATH
PYTHONPATH=$PYDIR
export PATH PYTHONPATH
[ "$(command -v ptcc)" = "$P/bin/ptcc" ] || fail "ptcc on PATH is $(command -v ptcc), not $P/bin/ptcc"
[ "$(command -v ptcc-record)" = "$P/bin/ptcc-record" ] || fail "ptcc-record on PATH is not $P/bin/ptcc-record"
ptcc-record "$PTCC_SRCDIR/examples/lenet/lenet.py:LeNet" --input 1x1x28x28 -o lenet.log >out 2>&1 ||
	{ cat out; fail "the installed ptcc-record"; }
ptcc lenet.log -o lenet.prototxt >out 2>&1 || { cat out; fail "the installed ptcc"; }
for f in lenet.log lenet.safetensors lenet.prototxt lenet.caffemodel; do
	[ -s "$f" ] || fail "the example wrote no $f"
done
printf '# ptcc %s: lenet.log, target caffe, -O1\n# outputs: "fc3"\nname: "LeNet"\n' \
	"$(ptcc --version | sed 's/^ptcc //')" >head.want
head -n 3 lenet.prototxt | cmp -s - head.want || { head -n 3 lenet.prototxt; fail "lenet.prototxt's first lines"; }
# the shipped example's net and weights, exactly (but for the layer notes' Python paths, which are
# relative to the directory the recorder ran in)
grep -v '^# .*:[0-9]*: ' lenet.prototxt >net.got
grep -v '^# .*:[0-9]*: ' "$PTCC_SRCDIR/tests/golden/lenet.prototxt" >net.want
cmp -s net.got net.want || fail "lenet.prototxt differs from tests/golden's"
cmp -s lenet.safetensors "$PTCC_SRCDIR/examples/lenet/lenet.safetensors" || fail "lenet.safetensors differs"
ptcc-verify "$PTCC_SRCDIR/examples/lenet/lenet.py:LeNet" --input 1x1x28x28 lenet.prototxt --runtime opencv \
	--layers >out 2>&1 || { cat out; fail "the installed ptcc-verify"; }
cat out
[ "$(tail -n 1 out)" = "verdict: pass (tolerance 0.0001)" ] || fail "ptcc-verify's verdict"
# the README's `from ptcc.record import record` with this PYTHONPATH
got=$("$PYTHON" -c 'import ptcc.record; print(ptcc.record.__file__)') || fail "import ptcc.record"
[ "$got" = "$PYDIR/ptcc/record.py" ] || fail "PYTHONPATH=$PYDIR imports $got"

echo "the installed ptcc-record imports the installed package ahead of one first on PYTHONPATH"
mkdir -p decoy/ptcc
echo 'raise SystemExit("the decoy ptcc package was imported")' >decoy/ptcc/__init__.py
PYTHONPATH=$T/decoy:$PTCC_SRCDIR/python ptcc-record --version >out 2>&1 || { cat out; fail "ptcc-record --version"; }
grep -q '^ptcc-record [0-9]' out || { cat out; fail "ptcc-record --version"; }

echo "... and does not fall back on the source tree's without it"
mv "$PYDIR/ptcc" "$PYDIR/ptcc.away" || fail "mv"
for pp in "" "$PTCC_SRCDIR/python"; do
	PYTHONPATH=$pp ptcc-record --version >out 2>&1 && { cat out; fail "ptcc-record ran without its package"; }
	grep -q "^ptcc-record: no ptcc package in $PYDIR" out || { cat out; fail "ptcc-record without its package"; }
done
mv "$PYDIR/ptcc.away" "$PYDIR/ptcc" || fail "mv back"

echo "the build tree's ptcc-record imports the source tree's package ahead of one first on PYTHONPATH"
PYTHONPATH=$T/decoy:$PYDIR "$PTCC_BUILDDIR/ptcc-record" --version >out 2>&1 ||
	{ cat out; fail "the build tree's ptcc-record --version"; }

echo "the man page"
if command -v man >/dev/null 2>&1; then
	[ "$(man -M "$P/share/man" -w ptcc)" = "$P/share/man/man1/ptcc.1" ] || fail "man -M $P/share/man -w ptcc"
	MANPAGER=cat man -M "$P/share/man" ptcc 2>/dev/null | grep -q 'compile a PyTorch trace log' ||
		fail "man -M $P/share/man ptcc"
fi

echo "make uninstall prefix=$P leaves no file"
mk uninstall prefix="$P" >"$D/uninstall.out" 2>&1 || { cat "$D/uninstall.out"; fail "make uninstall prefix=$P"; }
find "$P" ! -type d >"$D/left"
[ -s "$D/left" ] && { cat "$D/left"; fail "make uninstall left files in $P"; }

echo "make install DESTDIR=$D/dest: everything under it, the script naming the final directory"
FINAL=$(mk -s print-pythondir) || fail "make print-pythondir"
mk install DESTDIR="$D/dest" >"$D/install.out" 2>&1 || { cat "$D/install.out"; fail "make install DESTDIR=$D/dest"; }
[ -f "$D/dest$FINAL/ptcc/record.py" ] || fail "no package in $D/dest$FINAL"
script=$(find "$D/dest" -name ptcc-record -type f)
[ -n "$script" ] && [ -x "$script" ] || fail "no ptcc-record under $D/dest"
grep -qF "_dir = \"$FINAL\"" "$script" || { cat "$script"; fail "the DESTDIR script does not name $FINAL"; }
grep -F "$D/dest" "$script" && fail "the DESTDIR script names DESTDIR"
mk uninstall DESTDIR="$D/dest" >"$D/uninstall.out" 2>&1 || { cat "$D/uninstall.out"; fail "make uninstall DESTDIR"; }
find "$D/dest" ! -type d >"$D/left"
[ -s "$D/left" ] && { cat "$D/left"; fail "make uninstall DESTDIR=$D/dest left files"; }

rm -rf "$D"
echo ok
