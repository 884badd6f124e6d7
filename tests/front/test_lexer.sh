#!/bin/sh
# Lexical and syntactic edge cases, checked through the canonical log (--emit=log): floats that must
# round-trip exactly, CR LF line ends, a final line without a line end, very long lines, non-ASCII
# names, comments and tabs, keyword-spelled argument names.
. "$(dirname "$0")/setup.sh"

HEAD='ptcc-trace 1
weights "w.safetensors"
input %0 : f32[1,3]'

# canon FILE: print the canonical log, failing on any error
canon() {
	run_ptcc --emit=log "$1" >"$T/canon" 2>"$T/err" || { cat "$T/err"; fail "ptcc --emit=log $1"; }
	cat "$T/canon"
}

# floats: each input text and the text the canonical log must show (Python's repr)
while read -r text want; do
	printf '%s\n%%1 = add(%%0, %s)\noutput %%1\n' "$HEAD" "$text" >"$T/f.log"
	got=$(canon "$T/f.log" | sed -n 's/^%1 = add(%0, \(.*\)) : .*/\1/p')
	[ "$got" = "$want" ] || fail "float $text: got '$got', want '$want'"
	# and the canonical text reads back as itself
	printf '%s\n%%1 = add(%%0, %s)\noutput %%1\n' "$HEAD" "$got" >"$T/g.log"
	again=$(canon "$T/g.log" | sed -n 's/^%1 = add(%0, \(.*\)) : .*/\1/p')
	[ "$again" = "$want" ] || fail "float $want does not round-trip: $again"
done <<'FLOATS'
1.0 1.0
-0.0 -0.0
0.1 0.1
1e-45 1e-45
5e-324 5e-324
4.9406564584124654e-324 5e-324
2.2250738585072014e-308 2.2250738585072014e-308
1.7976931348623157e+308 1.7976931348623157e+308
1e308 1e+308
1e999 inf
0.30000000000000004 0.30000000000000004
9007199254740993.0 9007199254740992.0
123456789012345678.0 1.2345678901234568e+17
1e16 1e+16
1e15 1000000000000000.0
0.0001 0.0001
0.00001 1e-05
1.5E3 1500.0
3.141592653589793 3.141592653589793
inf inf
-inf -inf
nan nan
FLOATS

# integers at the edges of int64
printf '%s\n%%1 = add(%%0, -9223372036854775808)\n%%2 = add(%%1, 9223372036854775807)\noutput %%2\n' "$HEAD" >"$T/i.log"
canon "$T/i.log" | grep -q 'add(%0, -9223372036854775808)' || fail "INT64_MIN"
canon "$T/i.log" | grep -q 'add(%1, 9223372036854775807)' || fail "INT64_MAX"

# CR LF line ends and a last line without a line end give the same trace as LF
printf '%s\n%%1 = relu(%%0)\noutput %%1\n' "$HEAD" >"$T/lf.log"
printf '%s\n%%1 = relu(%%0)\noutput %%1' "$HEAD" | sed 's/$/\r/' | tr -d '\n' | sed 's/\r/\r\n/g' >"$T/crlf.log"
printf '%s\n%%1 = relu(%%0)\noutput %%1' "$HEAD" >"$T/noeol.log"
grep -q "$(printf '\r')" "$T/crlf.log" || fail "test setup: no CR in crlf.log"
canon "$T/lf.log" >"$T/lf.out"
canon "$T/crlf.log" >"$T/crlf.out"
canon "$T/noeol.log" >"$T/noeol.out"
cmp -s "$T/lf.out" "$T/crlf.out" || fail "CR LF trace differs"
cmp -s "$T/lf.out" "$T/noeol.out" || fail "trace without a final line end differs"

# comments, tabs, blank lines, keyword-spelled keyword names
printf 'ptcc-trace 1 # header\n\n\tweights "w.safetensors"  # weights\n# a comment\ninput %%0 : f32[1,3]\n\t%%1 = relu(input=%%0, inplace=false)\t# in-line\noutput %%1\n' >"$T/c.log"
canon "$T/c.log" | grep -q '^%1 = relu(%0, inplace=false) : f32\[1,3\]$' || fail "comments, tabs, keyword names"

# a very long line: cat of 100001 tensors (about 400 kB)
{
	printf '%s\n%%1 = cat([' "$HEAD"
	i=0
	while [ $i -lt 1000 ]; do printf '%%0, %%0, %%0, %%0, %%0, %%0, %%0, %%0, %%0, %%0, '; i=$((i + 1)); done | awk '{ for (i = 0; i < 10; i++) printf "%s", $0 }'
	printf '%%0], dim=0)\noutput %%1\n'
} >"$T/long.log"
[ "$(wc -c <"$T/long.log")" -gt 300000 ] || fail "test setup: long line too short"
canon "$T/long.log" | grep -q ' : f32\[100001,3\]$' || fail "very long line"

# non-ASCII names: scope and class names, input names, parameter names
cat >"$T/u.log" <<'UTF8'
ptcc-trace 1
weights "w.safetensors"
param $模型.权重 : f32[4,3]
param $"odd name" : f32[4]
input %0 "ünïcödé" : f32[1,3]
call "" Модель
  call ветка.0 Ветка
    %1 = linear(%0, $模型.权重, $"odd name") : f32[1,4] @ "café.py:1"
  return ветка.0
return ""
output %1 "sortie"
UTF8
canon "$T/u.log" >"$T/u.out"
grep -q '^param \$"模型.权重" : f32\[4,3\]$' "$T/u.out" || fail "non-ASCII param"
grep -q '^  call "ветка.0" "Ветка"$' "$T/u.out" || fail "non-ASCII scope"
grep -q '^input %0 "ünïcödé" : f32\[1,3\]$' "$T/u.out" || fail "non-ASCII input name"
grep -q '@ "café.py:1"$' "$T/u.out" || fail "non-ASCII source position"
canon "$T/u.out" >"$T/u2.out"
cmp -s "$T/u.out" "$T/u2.out" || fail "non-ASCII names do not round-trip"

# escapes in strings round-trip
printf '%s\n%%1 = relu(%%0) @ "a\\\\b \\"q\\" \\t \\x01 \\u00e9"\noutput %%1\n' "$HEAD" >"$T/e.log"
canon "$T/e.log" | grep -qF '@ "a\\b \"q\" \t \x01 é"' || { cat "$T/canon"; fail "string escapes"; }

# results written `_`, several results, slices and ellipsis in getitem
printf '%s\n%%1, _ = chunk(%%0, 2, dim=1)\n%%2 = getitem(%%0, [..., slice(none, 2, none), none])\n%%3 = add(%%1, %%2)\noutput %%3\n' \
	"ptcc-trace 1
weights \"w.safetensors\"
input %0 : f32[1,4]" >"$T/s.log"
canon "$T/s.log" >"$T/s.out"
grep -q '^%1, _ = chunk(%0, chunks=2, dim=1) : f32\[1,2\], f32\[1,2\]$' "$T/s.out" || { cat "$T/s.out"; fail "chunk"; }
grep -q '^%2 = getitem(%0, \[\.\.\., slice(none, 2, none), none\]) : f32\[1,2,1\]$' "$T/s.out" || { cat "$T/s.out"; fail "getitem"; }
echo ok
