#!/bin/sh
# The files made from the op table (src/ops.def) are up to date: the spec's op table
# (docs/trace-format.md §4.2) is `ptcc --list-ops=markdown` and the recorder's vocabulary
# (python/ptcc/optable.py) is `ptcc --list-ops=python`.  `make update-optable` rewrites both.
. "$(dirname "$0")/setup.sh"
"$PTCC" --list-ops=markdown >"$T/table.md" || fail "--list-ops=markdown"
"$PTCC" --list-ops=python >"$T/optable.py" || fail "--list-ops=python"
[ "$(wc -l <"$T/table.md")" -gt 100 ] || fail "the markdown table is too short"
# the spec's table: from its header line to the first blank line after §4.2's heading
sed -n '/^### 4.2/,/^## 5/p' "$PTCC_SRCDIR/docs/trace-format.md" |
	sed -n '/^| op | arguments | view |$/,/^$/p' | sed '/^$/d' >"$T/spec.md"
bad=0
diff -u "$T/spec.md" "$T/table.md" || { echo "docs/trace-format.md §4.2 is stale"; bad=1; }
diff -u "$PTCC_SRCDIR/python/ptcc/optable.py" "$T/optable.py" || { echo "python/ptcc/optable.py is stale"; bad=1; }
[ $bad = 0 ] || fail "regenerate with 'make update-optable'"
"$PTCC" --list-ops=yaml 2>"$T/err" && fail "--list-ops=yaml was accepted"
grep -q "the format is text, lowering, markdown, python or onnx" "$T/err" || fail "--list-ops=yaml: $(cat "$T/err")"
echo "$(($(wc -l <"$T/table.md") - 2)) ops: the spec's table and optable.py follow ops.def"
