#!/bin/sh
# The good traces of tests/traces: each one checks with its weights (--check), its canonical log and IR
# match the golden files when there are some (NAME.canon.log, NAME.ir), the canonical log round-trips
# (a fixed point of --emit=log, and parsing it gives the same IR), and the IR, a trace in SSA form,
# parses back to itself and compiles to the same prototxt as the trace.
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
	# the IR is a trace in SSA form: it parses back to itself, and compiles to the same net
	run_ptcc --emit=ir "$T/$name.ir" >"$T/$name.3.ir" || fail "$name: --emit=ir of the IR"
	cmp -s "$T/$name.ir" "$T/$name.3.ir" || { diff "$T/$name.ir" "$T/$name.3.ir"; fail "$name: the IR is not a fixed point"; }
	if [ -f "$name.canon.log" ]; then
		diff -u "$name.canon.log" "$T/$name.log" || fail "$name: canonical log differs from $name.canon.log"
	fi
	if [ -f "$name.ir" ]; then
		diff -u "$name.ir" "$T/$name.ir" || fail "$name: IR differs from $name.ir"
	fi
	if [ -f "$name.safetensors" ]; then
		cp "$T/$name.ir" "$T/$name.ir.log"
		run_ptcc --no-weights -o "$T/a.prototxt" "$log" 2>/dev/null || fail "$name: does not compile"
		run_ptcc --no-weights -o "$T/b.prototxt" "$T/$name.ir.log" 2>/dev/null || fail "$name: its IR does not compile"
		# the net name comes from the file's name when the trace has no scope, and the notes
		# above the layers name the trace's file and lines: compare the layers
		drop='^name:\|^# ptcc \|^# .*:[0-9]*: '
		grep -v "$drop" "$T/a.prototxt" >"$T/a" && grep -v "$drop" "$T/b.prototxt" >"$T/b"
		cmp -s "$T/a" "$T/b" || { diff "$T/a" "$T/b" | head; fail "$name: its IR compiles to another net"; }
	fi
	n=$((n + 1))
done
[ $n -gt 0 ] || fail "no traces"
echo "$n traces ok"
