#!/bin/sh
# Weights that are legal in the file but poison the net (NaN, infinities; a negative BatchNorm
# variance) give one warning per tensor, naming it and its first such value, only when the weights
# are read: the compile goes on (exit status 0).  The traces are tests/bad's w-non-finite and
# w-negative-var (their first line is checked there too).
. "$(dirname "$0")/setup.sh"
B=$PTCC_SRCDIR/tests/bad
cp "$B/w-non-finite.log" "$B/w-non-finite.safetensors" "$B/w-negative-var.log" \
	"$B/w-negative-var.safetensors" "$T/"
cd "$T" || exit 99

# exactly the warning lines of a run, and its status
warnings() {
	run_ptcc "$@" 2>err >/dev/null
	echo "status $?"
	grep ': warning: ' err
}

warnings -o net.prototxt w-non-finite.log >got
cat >want <<'EOF'
status 0
w-non-finite.log:3:7: warning: $w has 2 non-finite values (the first: nan at [0,1,0,0])
EOF
diff -u want got || fail "non-finite weights"
[ -s net.caffemodel ] || fail "no caffemodel beside the warning"

warnings -o net.prototxt w-negative-var.log >got
cat >want <<'EOF'
status 0
w-negative-var.log:4:7: warning: $v has 2 negative values (the first: -0.5 at [1]); batch_norm of them is NaN
EOF
diff -u want got || fail "negative variances"

# -O2 reads the weights to fold BatchNorm, even with --no-weights: the same warning
warnings -O2 --no-weights -o net.prototxt w-negative-var.log >got
diff -u want got || fail "negative variances at -O2 --no-weights"

# the same variance read by two batch_norm lines: one warning
sed 's/^output %1$/%2 = batch_norm(%1, $m, $v, none, none, training=false, momentum=0.1, eps=1e-05)\noutput %2/' \
	w-negative-var.log >twice.log
cp w-negative-var.safetensors twice.safetensors
sed -i 's/w-negative-var.safetensors/twice.safetensors/' twice.log
warnings -o net.prototxt twice.log >got
[ "$(grep -c 'negative values' got)" = 1 ] || { cat got; fail "two warnings for one tensor"; }

# without the weights: not read, so nothing to say
for opts in "--no-weights -o net.prototxt" "--emit=none"; do
	# shellcheck disable=SC2086
	warnings $opts w-non-finite.log >got
	[ "$(cat got)" = "status 0" ] || { cat got; fail "a warning with $opts"; }
	# shellcheck disable=SC2086
	warnings $opts w-negative-var.log >got
	[ "$(cat got)" = "status 0" ] || { cat got; fail "a warning with $opts"; }
done
echo "weight value warnings: ok"
