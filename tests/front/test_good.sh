#!/bin/sh
# The good traces of tests/traces: each one checks with its weights (--check), its canonical log and IR
# match the golden files when there are some (NAME.canon.log, NAME.ir), and the canonical log
# round-trips: it is a fixed point of --emit=log, and parsing it gives the same IR.
. "$(dirname "$0")/setup.sh"
cd "$PTCC_SRCDIR/tests/traces" || exit 99
n=0
for log in *.log; do
	case $log in *.canon.log) continue ;; esac
	name=${log%.log}
	run_ptcc --check "$log" || fail "$name: --check"
	run_ptcc --emit=log "$log" >"$T/$name.log" || fail "$name: --emit=log"
	run_ptcc --emit=ir "$log" >"$T/$name.ir" || fail "$name: --emit=ir"
	run_ptcc --emit=log "$T/$name.log" >"$T/$name.2.log" || fail "$name: --emit=log of the canonical log"
	run_ptcc --emit=ir "$T/$name.log" >"$T/$name.2.ir" || fail "$name: --emit=ir of the canonical log"
	cmp -s "$T/$name.log" "$T/$name.2.log" || { diff "$T/$name.log" "$T/$name.2.log"; fail "$name: --emit=log is not a fixed point"; }
	cmp -s "$T/$name.ir" "$T/$name.2.ir" || { diff "$T/$name.ir" "$T/$name.2.ir"; fail "$name: the canonical log gives another IR"; }
	if [ -f "$name.canon.log" ]; then
		diff -u "$name.canon.log" "$T/$name.log" || fail "$name: canonical log differs from $name.canon.log"
	fi
	if [ -f "$name.ir" ]; then
		diff -u "$name.ir" "$T/$name.ir" || fail "$name: IR differs from $name.ir"
	fi
	n=$((n + 1))
done
[ $n -gt 0 ] || fail "no traces"
echo "$n traces ok"
