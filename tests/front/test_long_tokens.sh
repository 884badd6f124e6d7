#!/bin/sh
# Issue 11: one 64 MiB token (a comment, a string, a run of blanks) lexes to the same result as a
# short one, and deeply nested calls give --emit=log/ir output linear in the input.  The timeouts
# only guard against hangs (the quadratic lexer took minutes here); bench/long_tokens.py measures
# the time per MiB.
. "$(dirname "$0")/setup.sh"
PY=${PYTHON:-/usr/bin/python3}
MIB=${PTCC_LONG_MIB:-64}
G=120

# gen KIND N FILE: the test trace with a token of N bytes of KIND (N = 0: the short form)
gen() {
	"$PY" - "$1" "$2" "$3" <<'PYEOF' || fail "gen $1"
import sys
kind, n, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(path, "w") as f:
	w = f.write
	w('ptcc-trace 1\nweights "none.safetensors"\ninput %0 "x" : f32[1,3,8,8]\n')
	def run(ch):
		k = n
		while k > 0:
			w(ch * min(k, 1 << 20))
			k -= 1 << 20
	if kind == "comment":
		w("#"); run("x"); w("\n%1 = relu(%0) : f32[1,3,8,8]\n")
	elif kind == "string":
		w('%1 = relu(%0) : f32[1,3,8,8] @ "'); run("y"); w(':1"\n')
	elif kind == "unterminated":
		w('%1 = relu(%0) : f32[1,3,8,8] @ "'); run("y"); w("\n")
	elif kind == "blanks":
		# after punctuation, after a name, inside a list and a type
		w("%1 = relu"); run(" "); w("(%0,"); run("\t"); w(" inplace"); run(" ")
		w("=false)"); run(" "); w(": f32["); run(" "); w("1,3,8,8]\n")
		w("%2 = view(%1, ["); run(" "); w("1, 192]) : f32[1,192]\n")
	w("output %2\n" if kind == "blanks" else "output %1\n")
PYEOF
}

n=$((MIB << 20))
for kind in comment blanks; do
	gen $kind 0 "$T/short.log"
	gen $kind $n "$T/long.log"
	run_ptcc --emit=log "$T/short.log" >"$T/short.out" 2>&1 || fail "$kind: short trace"
	timeout $G "$PTCC" --emit=log "$T/long.log" >"$T/long.out" 2>&1 ||
		fail "$kind: ptcc failed or hung on a $MIB MiB token"
	cmp -s "$T/short.out" "$T/long.out" || fail "$kind: a $MIB MiB token changes the output"
	echo "ok: a $MIB MiB $kind"
done

# a string: its value is kept whole
gen string $n "$T/long.log"
timeout $G "$PTCC" --emit=log "$T/long.log" >"$T/long.out" 2>&1 ||
	fail "string: ptcc failed or hung on a $MIB MiB string"
"$PY" - "$T/long.out" $n <<'PYEOF' || fail "string: the $MIB MiB string is not in --emit=log"
import sys
text = open(sys.argv[1]).read()
n = int(sys.argv[2])
want = '%1 = relu(%0) : f32[1,3,8,8] @ "' + "y" * n + ':1"\n'
sys.exit(0 if want in text else 1)
PYEOF
echo "ok: a $MIB MiB string"

# an unterminated one: the usual diagnostic, at its opening quote
gen unterminated $n "$T/long.log"
timeout $G "$PTCC" --emit=log "$T/long.log" >/dev/null 2>"$T/long.err"
[ $? = 1 ] || fail "unterminated string: exit status $? (want 1)"
first=$(head -n 1 "$T/long.err")
[ "$first" = "$T/long.log:4:32: error: missing terminating '\"' character" ] ||
	fail "unterminated string: first line of the diagnostic: $(echo "$first" | cut -c1-200)"
echo "ok: a $MIB MiB unterminated string"

# 20,000 nested calls: the indentation stops at 32 levels, and the log parses back to the same IR
"$PY" - "$T/deep.log" <<'PYEOF' || fail "gen deep"
import sys
n = 20000
with open(sys.argv[1], "w") as f:
	f.write('ptcc-trace 1\nweights "none.safetensors"\ninput %0 "x" : f32[1,3,8,8]\n')
	f.writelines(f"call m{i} M\n" for i in range(n))
	f.write("%1 = relu(%0) : f32[1,3,8,8]\n")
	f.writelines(f"return m{i}\n" for i in reversed(range(n)))
	f.write("output %1\n")
PYEOF
for emit in log ir; do
	timeout $G "$PTCC" --emit=$emit "$T/deep.log" >"$T/deep.out.$emit" || fail "deep: --emit=$emit"
	size=$(wc -c <"$T/deep.out.$emit")
	# 40,001 lines, each at most 64 bytes of indentation and about 30 of text
	[ "$size" -lt 4000000 ] || fail "deep: --emit=$emit wrote $size bytes"
	echo "ok: 20000 nested calls, --emit=$emit: $size bytes"
done
timeout $G "$PTCC" --emit=ir "$T/deep.out.log" >"$T/re.ir" || fail "deep: re-parse of the log"
cmp -s "$T/re.ir" "$T/deep.out.ir" || fail "deep: the log does not parse back to the same IR"
echo "ok: the deep log parses back to the same IR"
