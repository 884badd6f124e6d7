#!/bin/sh
# Every crasher and hang the fuzzers found and that is fixed, replayed with ptcc (under
# scripts/check-sanitizers, ptcc built with ASan and UBSan): tests/fuzz/crashers/NAME.log is the
# trace (a weights-file finding: a trace naming NAME.safetensors beside it), or NAME.onnx the
# model (fuzz_onnx's findings), NAME.args ptcc's
# options (default --check), NAME.err the exact diagnostics expected on stderr, NAME.status the exit
# status when it is not 1.  Each runs in a copy of its files, under a 30-second limit (a hang
# fails).  Unfixed findings wait in tests/fuzz/open/, which this test does not read.
. "$(dirname "$0")/../front/setup.sh"
cd "$PTCC_SRCDIR/tests/fuzz/crashers" || exit 99
n=0
bad=0
for log in *.log *.onnx; do
	[ -f "$log" ] || continue
	name=${log%.*}
	[ -f "$name.err" ] || fail "$name.err is missing"
	want_status=1
	[ -f "$name.status" ] && want_status=$(cat "$name.status")
	args=--check
	[ -f "$name.args" ] && args=$(cat "$name.args")
	rm -rf "$T/run" && mkdir "$T/run" && cp "$name".* "$T/run/" || exit 99
	# shellcheck disable=SC2086
	(cd "$T/run" && timeout 30 "$PTCC" $args "$log" >/dev/null 2>"$T/err")
	status=$?
	if ! cmp -s "$T/err" "$name.err" || [ "$status" != "$want_status" ]; then
		echo "FAIL: $name (ptcc $args $log: status $status, want $want_status)"
		diff "$name.err" "$T/err" | head -n 20
		bad=$((bad + 1))
	fi
	n=$((n + 1))
done
echo "$n crashers replayed, $bad failed"
[ "$bad" -eq 0 ]
