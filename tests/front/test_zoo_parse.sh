#!/bin/sh
# Every zoo trace the recorder wrote (tests/recorder/test_zoo.py, into $PTCC_TEST_OUT/zoo) parses,
# resolves, shape-checks against its annotations and weights (--check), and round-trips through
# --emit=log: the canonical log is a fixed point and gives the same IR.  Missing zoo traces are a
# failure under CI=true, else a skip.
. "$(dirname "$0")/setup.sh"
ZOO=${PTCC_TEST_OUT:-$PTCC_BUILDDIR/tests/out}/zoo
MODELS="alexnet vgg11_bn resnet18 resnet50 squeezenet1_0 googlenet inception_v3 densenet121 mobilenet_v2
mobilenet_v3_small shufflenet_v2_x1_0 efficientnet_b0 mnasnet0_5 regnet_x_400mf"
missing=
for m in $MODELS; do
	[ -f "$ZOO/$m.log" ] || missing="$missing $m"
done
if [ -n "$missing" ]; then
	echo "zoo traces missing in $ZOO:$missing"
	[ "${CI:-}" = true ] && fail "zoo traces missing under CI"
	exit 77
fi
n=0
for m in $MODELS; do
	log=$ZOO/$m.log
	run_ptcc --check "$log" 2>"$T/err" || { head -20 "$T/err"; fail "$m: --check"; }
	[ -s "$T/err" ] && { cat "$T/err"; fail "$m: diagnostics on a recorded trace"; }
	run_ptcc --emit=log "$log" >"$T/$m.log" || fail "$m: --emit=log"
	run_ptcc --emit=ir "$log" >"$T/$m.ir" || fail "$m: --emit=ir"
	cp "$T/$m.log" "$T/$m.canon.log"
	run_ptcc --emit=log "$T/$m.canon.log" >"$T/$m.2.log" || fail "$m: --emit=log of the canonical log"
	run_ptcc --emit=ir "$T/$m.canon.log" >"$T/$m.2.ir" || fail "$m: --emit=ir of the canonical log"
	cmp -s "$T/$m.log" "$T/$m.2.log" || fail "$m: --emit=log is not a fixed point"
	cmp -s "$T/$m.ir" "$T/$m.2.ir" || fail "$m: the canonical log gives another IR"
	n=$((n + 1))
	echo "$m ok: $(grep -c ' = ' "$T/$m.log") ops"
done
echo "$n zoo traces ok"
