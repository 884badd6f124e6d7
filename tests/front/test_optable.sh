#!/bin/sh
# ptcc's op table (src/ops.def, printed by --list-ops) agrees with the spec's (docs/trace-format.md
# §4.2): every op of the spec is known, with the same parameters in the same order, the same number
# written positionally, and the same view mark.
. "$(dirname "$0")/setup.sh"
"$PTCC" --list-ops >"$T/ops" || fail "--list-ops"
# spec rows: | `name` | `a`, `b`, `c=` | view |  ->  name positional view a b c
sed -n '/^### 4.2/,/^## 5/p' "$PTCC_SRCDIR/docs/trace-format.md" |
	awk -F'|' '/^\| `/ {
		name = $2; gsub(/[ `]/, "", name)
		n = split($3, a, ",")
		pos = 0; params = ""
		for (i = 1; i <= n; i++) {
			p = a[i]; gsub(/[ `]/, "", p)
			if (p !~ /=$/) pos = i
			sub(/=$/, "", p)
			params = params " " p
		}
		view = $4; gsub(/ /, "", view); if (view == "") view = "-"
		print name, pos, view params
	}' >"$T/spec"
[ "$(wc -l <"$T/spec")" -gt 50 ] || fail "could not read the spec's table"
bad=0
while read -r name pos view params; do
	line=$(grep "^$name " "$T/ops") || { echo "op $name of the spec is not in ops.def"; bad=1; continue; }
	set -- $line
	mine_pos=$2 mine_view=$3
	shift 3
	mine=$(echo "$*" | sed 's/?//g')
	case " $mine " in
	" $params "*) ;;
	*) echo "$name: parameters '$mine', spec '$params'"; bad=1 ;;
	esac
	[ "$mine_pos" = "$pos" ] || { echo "$name: $mine_pos positional, spec $pos"; bad=1; }
	[ "$mine_view" = "$view" ] || { echo "$name: view '$mine_view', spec '$view'"; bad=1; }
done <"$T/spec"
[ $bad = 0 ] || fail "ops.def and the spec's op table differ"
echo "$(wc -l <"$T/spec") ops of the spec agree"
