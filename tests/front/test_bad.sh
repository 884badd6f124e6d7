#!/bin/sh
# Every bad trace in tests/bad gives its expected first diagnostic, exactly, and exit status 1 (2 for
# an I/O error, 0 for a warning: NAME.status holds the status when it is not 1).  No input crashes
# ptcc: run this under an ASan/UBSan build, or with PTCC_VALGRIND=1.
. "$(dirname "$0")/setup.sh"
cd "$PTCC_SRCDIR/tests/bad" || exit 99
n=0
bad=0
for log in *.log; do
	name=${log%.log}
	[ -f "$name.err" ] || fail "$name.err is missing"
	want_status=1
	[ -f "$name.status" ] && want_status=$(cat "$name.status")
	run_ptcc --check "$log" >/dev/null 2>"$T/err"
	status=$?
	got=$(head -n 1 "$T/err")
	want=$(cat "$name.err")
	if [ "$got" != "$want" ] || [ "$status" != "$want_status" ]; then
		echo "FAIL: $name (status $status, want $want_status)"
		echo "  got:  $got"
		echo "  want: $want"
		bad=$((bad + 1))
	fi
	n=$((n + 1))
done
echo "$n bad traces, $bad failed"
[ "$n" -ge 40 ] || fail "only $n bad traces"
[ "$bad" -eq 0 ]
