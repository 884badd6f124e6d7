#!/bin/sh
# Hand-edited traces (docs/trace-format.md §6): a new input shape with the annotations dropped is
# inferred again; a changed stride changes the shapes downstream; an annotation that no longer holds is
# an error naming both types; a weight that no longer fits is an error at the line that uses it;
# moving the output cuts the network.  On tests/traces/small_cnn.log, and on the LeNet example when
# it is there.
. "$(dirname "$0")/setup.sh"
SRC=$PTCC_SRCDIR/tests/traces/small_cnn.log
cp "$PTCC_SRCDIR/tests/traces/small_cnn.safetensors" "$T/"

# drop every op's annotation: everything after the closing ')' up to '@' or the end
strip() { sed -E 's/^( *(%|_).*\)) : [^@]*(@.*)?$/\1 \3/; s/ +$//' "$@"; }

# 1. a new input size, annotations dropped: every shape is inferred again
strip "$SRC" | sed 's/f32\[1,3,32,32\]/f32[2,3,64,48]/' >"$T/a.log"
grep -q ') : f32' "$T/a.log" && fail "test setup: annotations left"
run_ptcc --check "$T/a.log" || fail "new input shape"
run_ptcc --emit=log "$T/a.log" >"$T/a.out" || fail "new input shape: --emit=log"
grep -q '^    %1 = conv2d(.*) : f32\[2,8,32,24\] @' "$T/a.out" || { cat "$T/a.out"; fail "conv1 shape"; }
grep -q '^  %3 = max_pool2d(.*) : f32\[2,8,16,12\]$' "$T/a.out" || fail "max_pool2d shape"
grep -q '^    %8 = linear(.*) : f32\[2,10\]$' "$T/a.out" || fail "linear shape"

# 2. a changed stride: the shapes downstream follow
sed 's/stride=\[2, 2\], padding=\[1, 1\]/stride=[1, 1], padding=[1, 1]/' "$T/a.log" >"$T/b.log"
run_ptcc --emit=log "$T/b.log" >"$T/b.out" || fail "changed stride"
grep -q '^    %1 = conv2d(.*stride=\[1, 1\].*) : f32\[2,8,64,48\] @' "$T/b.out" || fail "conv1 shape after the stride change"
grep -q '^  %4 = add_(%4, %3) : f32\[2,8,32,24\]$' "$T/b.out" || fail "add_ shape after the stride change"

# 3. the same change with the annotations kept: an error naming both types, and where they come from
sed 's/stride=\[2, 2\], padding=\[1, 1\]/stride=[1, 1], padding=[1, 1]/' "$SRC" >"$T/small_cnn.log"
run_ptcc --check "$T/small_cnn.log" 2>"$T/err" && fail "a stale annotation was accepted"
head -1 "$T/err" | grep -q "small_cnn.log:16:[0-9]*: error: %1 is annotated f32\[1,8,16,16\], but its inferred type is f32\[1,8,32,32\]" ||
	{ cat "$T/err"; fail "stale annotation message"; }
grep -q 'note: inferred by conv2d from %0 : f32\[1,3,32,32\]' "$T/err" || fail "no note on the inference"

# 4. a weight that no longer fits: an error at the line that uses it
strip "$SRC" | sed 's/f32\[1,3,32,32\]/f32[1,4,32,32]/' >"$T/small_cnn.log"
run_ptcc --check "$T/small_cnn.log" 2>"$T/err" && fail "a weight that does not fit was accepted"
head -1 "$T/err" | grep -q "small_cnn.log:16:21: error: weight of conv2d has type f32\[8,3,3,3\]: 3 input channels x 1 groups, but the input f32\[1,4,32,32\] has 4 channels" ||
	{ cat "$T/err"; fail "weight misfit message"; }

# 5. cut the network: output an earlier handle; the ops no output needs are dropped
sed 's/^output %8 "logits"$/output %3 "features"/' "$SRC" >"$T/c.log"
run_ptcc --emit=summary "$T/c.log" >"$T/c.out" 2>"$T/err" || { cat "$T/err"; fail "cut network"; }
grep -q '^ops: *4$' "$T/c.out" || { cat "$T/c.out"; fail "cut network: ops"; }
grep -q 'warning: %8 is never used' "$T/err" || { cat "$T/err"; fail "cut network: no warning about the old output"; }

# 6. swap an op for another with the same arguments (relu_ -> sigmoid_)
sed 's/relu_(%2)/sigmoid_(%2)/' "$SRC" >"$T/d.log"
run_ptcc --check "$T/d.log" || fail "relu_ swapped for sigmoid_"

# 6b. the spec's examples (§6): max_pool2d by avg_pool2d once max pooling's own arguments are gone;
# keeping one is an error naming it
sed 's/max_pool2d(%2, 3, stride=2, padding=1, dilation=1, ceil_mode=false, return_indices=false)/avg_pool2d(%2, 3, stride=2, padding=1, ceil_mode=false)/' "$SRC" >"$T/e.log"
grep -q 'avg_pool2d' "$T/e.log" || fail "test setup: no avg_pool2d"
run_ptcc --check "$T/e.log" || fail "max_pool2d swapped for avg_pool2d"
sed 's/= max_pool2d(/= avg_pool2d(/' "$SRC" >"$T/f.log"
run_ptcc --check "$T/f.log" 2>"$T/err" && fail "avg_pool2d with dilation was accepted"
grep -q "avg_pool2d has no argument 'dilation'" "$T/err" || { cat "$T/err"; fail "the argument avg_pool2d lacks"; }

# 7. the LeNet example, when the recorder's example is there: without its annotations, the same
# shapes are inferred
LENET=$PTCC_SRCDIR/examples/lenet/lenet.log
if [ -f "$LENET" ]; then
	strip "$LENET" >"$T/lenet.log"
	run_ptcc --emit=log "$LENET" >"$T/l1" || fail "lenet: --emit=log"
	run_ptcc --emit=log "$T/lenet.log" >"$T/l2" || fail "lenet without annotations: --emit=log"
	cmp -s "$T/l1" "$T/l2" || { diff "$T/l1" "$T/l2"; fail "lenet: the inferred shapes differ from the recorded ones"; }
	run_ptcc --check "$LENET" || fail "lenet: --check"
fi
echo ok
