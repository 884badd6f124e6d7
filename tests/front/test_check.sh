#!/bin/sh
# --check and --emit=none answer "will this deploy to TARGET?": every stage through lowering and the net
# verifier, nothing written.  Each tests/check/NAME.log with a NAME.err gives exactly that stderr (every
# independent error of every stage in one run, no cascade) and exit 1, with --check, --emit=none and a
# plain compile alike (which writes nothing then); clean.log passes for every target.
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
for target in caffe caffe-master opencv; do
	for level in -O0 -O1 -O2; do
		run_ptcc --emit=none --target=$target $level clean.log || fail "clean.log --target=$target $level"
		n=$((n + 1))
	done
done
ls ./*.prototxt ./*.caffemodel 2>/dev/null && fail "something was written"
echo "$n runs as expected"
