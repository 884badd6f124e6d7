#!/bin/sh
# The lexer's hand-written fast path (lex_fast in src/lexer.l) gives exactly what the flex rules alone
# give: the flex-only build (tests/unit/ptcc-flexlex) and ptcc must print the same canonical log, IR,
# diagnostics and exit status for every test trace, for a few thousand mutated lines (seeded:
# tests/lib/mutate_lines.py) and for a trace long enough that tokens straddle the lexer's buffer refills.
. "$(dirname "$0")/setup.sh"
FLEX=$PTCC_BUILDDIR/tests/unit/ptcc-flexlex
PY=${PYTHON:-/usr/bin/python3}
[ -x "$FLEX" ] || fail "no $FLEX (make check builds it)"
S=$PTCC_SRCDIR
mkdir "$T/in"
cp "$S"/tests/traces/*.log "$S"/tests/bad/*.log "$S"/tests/check/*.log "$S"/examples/lenet/lenet.log "$T/in/"
"$PY" "$S/tests/lib/mutate_lines.py" "${PTCC_LEX_SEED:-1}" 4000 "$T/in" "$S"/tests/traces/*.log \
	"$S"/tests/bad/*.log "$S/examples/lenet/lenet.log" || fail "mutate_lines.py"
# a long trace: 60000 op lines, about 4 MB, so that many tokens straddle the 64 KiB reads
awk 'BEGIN {
	print "ptcc-trace 1"; print "weights \"none.safetensors\""; print "input %0 \"x\" : f32[1,3,8,8]"
	for (i = 1; i <= 60000; i++)
		printf "%%%d = hardtanh(%%%d, min_val=-%d.25e-3, max_val=%d.5) : f32[1,3,8,8] @ \"m.py:%d\"\n", i, i - 1, i % 97, i % 89 + 1, i
	print "output %60000"
}' >"$T/in/long.log"
n=0
# runs of 64 and 65 blanks inside the one-token forms (a type, a list, a source position): 64 is
# the most either lexer keeps in one token, a longer run splits the form into tokens in both
for k in 64 65; do
	b=$(printf "%${k}s" "")
	for form in "f32[1,${b}3,8,8]" "[1,${b}3]" "[${b}1, 3${b}]" "f32[${b}]" "@${b}\"m.py:1\""; do
		n=$((n + 1))
		printf 'ptcc-trace 1\nweights "x.safetensors"\ninput %%0 "x" : f32[1,3,8,8]\n' \
			>"$T/in/blanks-$k-$n.log"
		printf '%%1 = view(%%0, %s) : %s\n%%2 = relu(%s)\noutput %%1\n' "$form" "$form" "$form" \
			>>"$T/in/blanks-$k-$n.log"
	done
done
n=0
bad=0
for f in "$T"/in/*.log; do
	for emit in log ir; do
		"$PTCC" --emit=$emit --max-errors=0 "$f" >"$T/fast.out" 2>"$T/fast.err"
		fs=$?
		"$FLEX" --emit=$emit --max-errors=0 "$f" >"$T/flex.out" 2>"$T/flex.err"
		ls=$?
		if [ $fs != $ls ] || ! cmp -s "$T/fast.out" "$T/flex.out" || ! cmp -s "$T/fast.err" "$T/flex.err"; then
			echo "$(basename "$f") --emit=$emit: exit $fs (fast) vs $ls (flex only)"
			diff "$T/fast.out" "$T/flex.out" | head -5
			diff "$T/fast.err" "$T/flex.err" | head -5
			bad=1
		fi
		n=$((n + 1))
	done
done
[ $bad = 0 ] || fail "the fast path and the flex rules disagree"
echo "$n runs agree (fast path vs flex rules alone)"
