#!/bin/sh
# --check and --emit=none answer "will this deploy to TARGET?": every stage through lowering and the net
# verifier, nothing written.  Each tests/check/NAME.log with a NAME.err gives exactly that stderr (every
# independent error of every stage in one run, no cascade) and exit 1, with --check, --emit=none and a
# plain compile alike (which writes nothing then); the clean traces pass for every target and level.
. "$(dirname "$0")/setup.sh"
cp "$PTCC_SRCDIR"/tests/check/* "$T/" || exit 99
cd "$T" || exit 99
n=0
for err in *.err; do
	name=${err%.err}
	for args in "--check" "--emit=none" "-o $name.prototxt -O2"; do
		# shellcheck disable=SC2086
		run_ptcc $args "$name.log" >/dev/null 2>got.err
		status=$?
		[ "$status" = 1 ] || fail "$name ($args): exit $status, want 1"
		cmp -s got.err "$err" || { diff "$err" got.err; fail "$name ($args): stderr differs"; }
		[ ! -e "$name.prototxt" ] || fail "$name ($args): wrote a prototxt"
		n=$((n + 1))
	done
done
for log in clean.log constant-output.log odd-names.log; do
	for target in caffe caffe-master opencv; do
		for level in -O0 -O1 -O2; do
			run_ptcc --emit=none --target=$target $level $log || fail "$log --target=$target $level"
			n=$((n + 1))
		done
	done
done
ls ./*.prototxt ./*.caffemodel 2>/dev/null && fail "something was written"
# the '# outputs:' line quotes and escapes names as the text format does
mkdir out || exit 99
run_ptcc --no-weights -o out/odd.prototxt odd-names.log || fail "odd-names.log"
[ "$(sed -n 2p out/odd.prototxt)" = '# outputs: "relu" "a\nlayer { \"b\" c.output"' ] ||
	fail "odd-names: $(sed -n 2p out/odd.prototxt)"
# and so do the notes above the layers (a newline would end the comment)
grep -qxF '# odd-names.log:5: %1 = relu @ odd\012src\\x.py:3' out/odd.prototxt ||
	fail "odd-names: the relu's note: $(grep relu out/odd.prototxt)"
run_ptcc --no-weights -o out/const.prototxt constant-output.log || fail "constant-output.log"
[ "$(sed -n 2p out/const.prototxt)" = '# outputs: "relu" "x.const_shape" "y.output"' ] ||
	fail "constant-output: $(sed -n 2p out/const.prototxt)"
n=$((n + 2))
echo "$n runs as expected"
