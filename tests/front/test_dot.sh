#!/bin/sh
# The drawings: --emit=dot (the trace's graph) and --emit=dot --after=PHASE (the Caffe net).
#   - golden files, byte for byte: tests/golden/dot/NAME.dot (the trace's graph) and NAME.PHASE.dot
#     (the net), for small_cnn.log, escapes.log (names that a DOT label must escape: quotes,
#     backslashes, \N, line ends, control bytes, a byte that is not UTF-8) and
#     tests/check/constant-output.log (outputs with no name, a constant and an input returned as
#     outputs: layers of no op);
#   - every trace of tests/traces (and the LeNet example, and the tests/check traces that compile)
#     drawn both ways, after every phase, at -O0..-O2: Graphviz's dot -Tsvg accepts each drawing
#     (so an escaping bug fails here), and the final net has as many layers as the prototxt;
#   - --after with -o: the file is the drawing, no model file is written, and a trace that does not
#     lower gives no drawing and no file.
# PTCC_UPDATE_GOLDEN=1 rewrites the golden files: review `git diff tests/golden/dot` before committing.
. "$(dirname "$0")/setup.sh"
S=$PTCC_SRCDIR
G=$S/tests/golden/dot
have_dot=1
command -v dot >/dev/null 2>&1 || have_dot=0
if [ $have_dot = 0 ] && [ "${CI:-}" = true ]; then
	fail "Graphviz's dot is missing (scripts/install-deps installs graphviz)"
fi

# the golden drawings: DIR LOG NAME.KIND [ptcc options...]
bad=0
golden() { # (sh has no local variables: these are the g_ ones)
	g_dir=$1 g_log=$2 g_out=$3
	shift 3
	(cd "$g_dir" && run_ptcc --emit=dot "$@" "$g_log") >"$T/$g_out" || fail "$g_out: ptcc --emit=dot $*"
	if [ "${PTCC_UPDATE_GOLDEN:-0}" = 1 ]; then
		cp "$T/$g_out" "$G/$g_out"
	elif ! diff -u "$G/$g_out" "$T/$g_out" >"$T/diff"; then
		head -60 "$T/diff"
		echo "$g_out: the drawing differs from tests/golden/dot/$g_out"
		bad=1
	fi
}
for name in small_cnn escapes; do
	golden "$S/tests/traces" $name.log $name.dot
	golden "$S/tests/traces" $name.log $name.fuse.dot --after=fuse
done
golden "$S/tests/traces" small_cnn.log small_cnn.lower.dot --after=lower
golden "$S/tests/traces" small_cnn.log small_cnn.fuse-O2.dot --after=fuse -O2
golden "$S/tests/check" constant-output.log constant-output.dot
golden "$S/tests/check" constant-output.log constant-output.fuse.dot --after=fuse
[ $bad = 0 ] || fail "a drawing changed (PTCC_UPDATE_GOLDEN=1 rewrites the golden files)"

# every trace, drawn both ways: Graphviz reads each drawing, and the final net is the prototxt's
mkdir "$T/in" && cp "$S"/tests/traces/*.log "$S"/tests/traces/*.safetensors "$S"/examples/lenet/lenet.log \
	"$S"/examples/lenet/lenet.safetensors "$T/in/" || exit 99
for log in clean constant-output odd-names; do
	cp "$S/tests/check/$log.log" "$T/in/" || exit 99
done
cd "$T/in" || exit 99
n=0
for log in *.log; do
	case $log in *.canon.log) continue ;; esac
	name=${log%.log}
	for how in "" "--after=lower" "--after=barriers" "--after=fuse" "--after=fuse -O0" \
		"--after=fuse -O2 --target=opencv"; do
		# shellcheck disable=SC2086
		run_ptcc --emit=dot $how "$log" >"$T/d.dot" || fail "$name: --emit=dot $how"
		if [ $have_dot = 1 ]; then
			# a syntax error fails; a byte that is not UTF-8 is only a warning
			dot -Tsvg "$T/d.dot" >/dev/null 2>"$T/err" && ! grep -q -e rror -e UTF8 "$T/err" ||
				{ cat "$T/err"; fail "$name: Graphviz rejects --emit=dot $how"; }
		fi
		n=$((n + 1))
	done
	run_ptcc --no-weights -o "$T/p.prototxt" "$log" || fail "$name: does not compile"
	layers=$(grep -c '^layer {' "$T/p.prototxt")
	run_ptcc --emit=dot --after=fuse "$log" >"$T/d.dot"
	drawn=$(grep -c '^  L[0-9]* \[' "$T/d.dot")
	[ "$layers" = "$drawn" ] || fail "$name: $drawn layers drawn, $layers in the prototxt"
done
[ $have_dot = 1 ] || echo "note: no Graphviz here, so dot did not read the drawings"

# a result the trace does not name is `_`
printf 'ptcc-trace 1\nweights "none.safetensors"\ninput %%0 : f32[1,2]\n%%1, _ = chunk(%%0, 2, 1)\noutput %%1\n' \
	>"$T/placeholder.log"
run_ptcc --emit=dot "$T/placeholder.log" >"$T/p.dot" || fail "--emit=dot placeholder.log"
grep -q 'label="%1, _ = chunk\\nf32\[1,1\]\\nf32\[1,1\]\\nplaceholder.log:4"' "$T/p.dot" ||
	{ cat "$T/p.dot"; fail "--emit=dot: a placeholder result"; }

# --after with -o writes the drawing and no model; a trace that does not lower, nothing
cd "$T" || exit 99
cp "$S/tests/traces/small_cnn.log" "$S/tests/traces/small_cnn.safetensors" "$S/tests/check/vit-block.log" \
	"$S/tests/check/vit-block.safetensors" . || exit 99
run_ptcc --emit=dot --after=fuse -o net.dot small_cnn.log >out || fail "--after=fuse -o"
cmp -s net.dot "$G/small_cnn.fuse.dot" || fail "-o net.dot is not the drawing"
[ ! -s out ] && [ ! -e small_cnn.prototxt ] && [ ! -e small_cnn.caffemodel ] ||
	fail "--emit=dot --after wrote something else"
run_ptcc --emit=dot --after=lower -o vit.dot vit-block.log >out 2>err
[ $? = 1 ] || fail "--after for a trace that does not lower: status"
grep -q 'threshold: ptcc does not lower this op yet' err || { cat err; fail "--after: no lowering error"; }
[ ! -e vit.dot ] && [ ! -s out ] || fail "--after drew a net that does not lower"
[ "$(ls | grep -c tmp)" = 0 ] || fail "a temporary file was left behind"
echo "$n drawings ok"
