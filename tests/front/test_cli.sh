#!/bin/sh
# The command line: help, version, usage errors (exit 2), I/O errors (exit 2), the model path.
. "$(dirname "$0")/setup.sh"
TR=$PTCC_SRCDIR/tests/traces/small_cnn.log

expect() { # STATUS PATTERN -- command...: exit status and a line of stdout+stderr matching PATTERN
	want=$1 pat=$2
	shift 3
	"$@" >"$T/out" 2>&1
	got=$?
	[ "$got" = "$want" ] || { cat "$T/out"; fail "$*: status $got, want $want"; }
	[ -z "$pat" ] || grep -q -- "$pat" "$T/out" || { cat "$T/out"; fail "$*: no line matches '$pat'"; }
}

expect 0 '^usage: ptcc \[options\] TRACE.log' -- "$PTCC" --help
expect 0 '^ptcc [0-9]' -- "$PTCC" --version
expect 2 'expected one trace file' -- "$PTCC"
expect 2 'expected only one trace file' -- "$PTCC" a.log b.log
expect 2 "Try 'ptcc --help'" -- "$PTCC" --frobnicate "$TR"
expect 2 "unknown --emit kind 'bogus'" -- "$PTCC" --emit=bogus "$TR"
expect 2 "unknown target 'bogus'" -- "$PTCC" --target=bogus "$TR"
expect 2 'optimisation level' -- "$PTCC" -O3 "$TR"
expect 2 '--dump-net=bogus: the phase is lower, barriers or fuse' -- "$PTCC" --dump-net=bogus "$TR"
expect 2 '--after=bogus: the phase is lower, barriers or fuse' -- "$PTCC" --emit=dot --after=bogus "$TR"
expect 2 '--after=fuse draws the net: it goes with --emit=dot' -- "$PTCC" --after=fuse "$TR"
expect 2 'max-errors=x' -- "$PTCC" --max-errors=x "$TR"
expect 2 "cannot open '$T/none.log'" -- "$PTCC" "$T/none.log"
expect 0 '' -- "$PTCC" "$TR" -o "$T/small.prototxt"
[ -s "$T/small.prototxt" ] && [ -s "$T/small.caffemodel" ] || fail "the model path wrote no prototxt and caffemodel"
expect 0 '' -- "$PTCC" "$TR" -o "$T/bare.prototxt" --no-weights
[ -s "$T/bare.prototxt" ] && [ ! -e "$T/bare.caffemodel" ] || fail "--no-weights wrote a caffemodel"
expect 0 '' -- "$PTCC" --check "$TR"
expect 0 '' -- "$PTCC" --emit=none "$TR"
expect 0 '^ops: *10$' -- "$PTCC" --emit=summary "$TR"
expect 0 '^  conv2d  *2$' -- "$PTCC" --emit=summary "$TR"
expect 2 'cannot create' -- "$PTCC" --emit=log -o "$T/no/such/dir/x.log" "$TR"

# --emit=dot: one box per op, one ellipse per input and output, and Graphviz accepts it
"$PTCC" --emit=dot "$TR" >"$T/g.dot" || fail "--emit=dot"
[ "$(grep -c '^  n[0-9]* \[label=' "$T/g.dot")" = 10 ] || { cat "$T/g.dot"; fail "--emit=dot: not one node per op"; }
[ "$(grep -c 'shape=ellipse' "$T/g.dot")" = 2 ] || fail "--emit=dot: inputs and outputs"
if command -v dot >/dev/null 2>&1; then
	dot -Tsvg "$T/g.dot" >/dev/null || fail "Graphviz rejects the --emit=dot output"
elif [ "${CI:-}" = true ]; then
	fail "Graphviz's dot is missing (scripts/install-deps installs it)"
fi

# -o writes the file (atomically: no temporary is left behind)
"$PTCC" --emit=log -o "$T/out.log" "$TR" || fail "--emit=log -o"
cmp -s "$T/out.log" "$PTCC_SRCDIR/tests/traces/small_cnn.canon.log" || fail "-o output differs"
[ "$(ls "$T" | grep -c tmp)" = 0 ] || fail "a temporary file was left behind"

# every error is reported, up to --max-errors
{
	printf 'ptcc-trace 1\nweights "w.safetensors"\ninput %%0 : f32[1]\n'
	for i in 1 2 3 4 5 6; do printf '%%%d = relu(%%0 ;\n' $i; done
	printf 'output %%0\n'
} >"$T/many.log"
"$PTCC" --emit=none "$T/many.log" 2>"$T/err"
[ $? = 1 ] || fail "status for many errors"
[ "$(grep -c ': error: ' "$T/err")" = 6 ] || { cat "$T/err"; fail "not every error was reported"; }
"$PTCC" --emit=none --max-errors=2 "$T/many.log" 2>"$T/err"
[ "$(grep -c ': error: unexpected' "$T/err")" = 2 ] || { cat "$T/err"; fail "--max-errors=2"; }
grep -q 'too many errors (2), stopping' "$T/err" || fail "no 'too many errors'"
echo ok
