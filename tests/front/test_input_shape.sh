#!/bin/sh
# --input (issue 10): an input's shape from the command line, by name or by position.  Every shape is
# inferred again; the annotations the new shapes contradict are ignored with one note, and --emit=log
# writes them anew; a shape that makes an op impossible is the usual error at the op's line; an
# --input that does not fit the trace, or is not a shape, is a usage error (exit status 2).  Without
# --input a stale annotation is still an error.
. "$(dirname "$0")/setup.sh"
cd "$T" || exit 99
cp "$PTCC_SRCDIR/tests/traces/small_cnn.log" "$PTCC_SRCDIR/tests/traces/small_cnn.safetensors" .
cp "$PTCC_SRCDIR/examples/lenet/lenet.log" "$PTCC_SRCDIR/examples/lenet/lenet.safetensors" .

# run STATUS -- ARGS...: ptcc's exit status must be STATUS; its stdout in out, its stderr in err
run() {
	want=$1
	shift 2
	run_ptcc "$@" >out 2>err
	got=$?
	[ "$got" = "$want" ] || { cat err; fail "ptcc $*: status $got, want $want"; }
}
# same STDERR-FILE: err is exactly the expected text
same() { diff -u "$1" err || fail "stderr of the last run differs from the expected text"; }

# 1. small_cnn (a global pooling before its linear: any image size fits) at 64x48, by name and by
# position: the Input layer's shape, the shapes downstream, one note for the stale annotations
cat >note.want <<'EOF'
ptcc: note: --input x=2x3x64x48: 10 result annotations disagree with the new shapes and were ignored (--emit=log writes the trace with the new ones)
EOF
run 0 -- small_cnn.log --input x=2x3x64x48 -o byname.prototxt
same note.want
[ -s byname.prototxt ] && [ -s byname.caffemodel ] || fail "--input: no model written"
tr -d ' \n' <byname.prototxt | grep -q 'type:"Input"top:"x"input_param{shape{dim:2dim:3dim:64dim:48}}' ||
	{ cat byname.prototxt; fail "the Input layer's shape is not --input's"; }
run 0 -- small_cnn.log --input 2x3x64x48 -o bypos.prototxt
sed 's/x=2x3x64x48/2x3x64x48/' note.want >note.pos.want
same note.pos.want
cmp -s byname.prototxt bypos.prototxt || fail "--input by name and by position differ"
cmp -s byname.caffemodel bypos.caffemodel || fail "--input by name and by position: the caffemodels differ"
run 0 -- --input=x=2x3x64x48 --emit=ir small_cnn.log
grep -q '^input %0 "x" : f32\[2,3,64,48\]$' out || { cat out; fail "--emit=ir: the input's type"; }
grep -q '^    %1 = conv2d(.*) : f32\[2,8,32,24\] @ "small_cnn.py:20"$' out || { cat out; fail "--emit=ir: conv1"; }
grep -q '^  %4 = max_pool2d(.*) : f32\[2,8,16,12\]$' out || { cat out; fail "--emit=ir: the pooling"; }
grep -q '^    %10 = linear(.*) : f32\[2,10\]$' out || { cat out; fail "--emit=ir: the linear"; }
run 0 -- --input x=2x3x64x48 --emit=summary small_cnn.log
grep -q '^input: *%0 "x" f32\[2,3,64,48\]$' out || { cat out; fail "--emit=summary: the input"; }
grep -q '^output: *%8 "logits" f32\[2,10\]$' out || { cat out; fail "--emit=summary: the output"; }
run 0 -- --input x=2x3x64x48 --check small_cnn.log

# --emit=log writes the trace with the new shapes; it compiles without --input, and without a note,
# to the same net (only the prototxt's first line, naming the trace, differs)
run 0 -- --input x=2x3x64x48 --emit=log -o big.log small_cnn.log
same note.want
grep -q '^input %0 "x" : f32\[2,3,64,48\]$' big.log || fail "--emit=log: the input line"
grep -q '^    %8 = linear(%7, $fc.weight, $fc.bias) : f32\[2,10\]$' big.log || { cat big.log; fail "--emit=log: linear"; }
run 0 -- big.log -o big.prototxt
[ ! -s err ] || { cat err; fail "the re-annotated trace: diagnostics"; }
# the notes above the layers name the trace's file and lines
tail -n +2 byname.prototxt | grep -v '^# .*:[0-9]*: ' >a.body
tail -n +2 big.prototxt | grep -v '^# .*:[0-9]*: ' >b.body
cmp -s a.body b.body || { diff a.body b.body; fail "the re-annotated trace compiles to another net"; }
cmp -s byname.caffemodel big.caffemodel || fail "the re-annotated trace: another caffemodel"

# the same shape as declared changes nothing, and the log has no note
run 0 -- --input x=1x3x32x32 --emit=log small_cnn.log
[ ! -s err ] || { cat err; fail "--input with the declared shape: diagnostics"; }
diff -u "$PTCC_SRCDIR/tests/traces/small_cnn.canon.log" out || fail "--input with the declared shape"

# a trace without annotations (docs/trace-format.md §6): --input re-infers it without a note
sed -E 's/^( *(%|_).*\)) : [^@]*(@.*)?$/\1 \3/; s/ +$//' small_cnn.log >bare.log
run 0 -- --input x=1x3x40x40 --emit=log bare.log
[ ! -s err ] || { cat err; fail "a trace without annotations: a note"; }
grep -q '^  %5 = adaptive_avg_pool2d(%4, output_size=\[1, 1\]) : f32\[1,8,1,1\]$' out || { cat out; fail "bare: pool"; }
grep -q '^  %3 = max_pool2d(.*) : f32\[1,8,10,10\]$' out || { cat out; fail "bare: max_pool2d"; }

# 2. two inputs: one by name and one by position, in either order; the exact log
cat >two.log <<'EOF'
ptcc-trace 1
weights "two.safetensors"
input %0 "a" : f32[1,2,4,4]
input %1 "b" : f32[1,2,4,4]
%2 = add(%0, %1) : f32[1,2,4,4]
%3 = max_pool2d(%2, 2) : f32[1,2,2,2]
%4 = cat([%3, %3], 1) : f32[1,4,2,2]
output %4
EOF
cat >two.want <<'EOF'
ptcc-trace 1
weights "two.safetensors"
input %0 "a" : f32[1,2,6,8]
input %1 "b" : f32[1,2,6,8]
%2 = add(%0, %1) : f32[1,2,6,8]
%3 = max_pool2d(%2, kernel_size=2) : f32[1,2,3,4]
%4 = cat([%3, %3], dim=1) : f32[1,4,3,4]
output %4
EOF
cat >two.note <<'EOF'
ptcc: note: --input b=1x2x6x8, --input 1x2x6x8: 3 result annotations disagree with the new shapes and were ignored (--emit=log writes the trace with the new ones)
EOF
run 0 -- two.log --emit=log --input b=1x2x6x8 --input 1x2x6x8
diff -u two.want out || fail "two inputs: --emit=log"
same two.note
run 0 -- two.log --emit=log --input 1x2x6x8 --input 1x2x6x8
diff -u two.want out || fail "two inputs by position: --emit=log"
# one input changed: the add no longer fits, at its line, with the inferred types
run 1 -- two.log --emit=log --input 1x2x6x8
cat >want <<'EOF'
two.log:5:6: error: add: the shapes f32[1,2,6,8] and f32[1,2,4,4] do not broadcast
%2 = add(%0, %1) : f32[1,2,4,4]
     ^~~
EOF
same want

# 3. LeNet at 32x32: the flatten gives 400 features, and fc1's weight wants 256; the error is at the
# linear line, as with a hand-edited input line, and the note says the annotations were ignored
run 1 -- lenet.log --input x=1x1x32x32 -o lenet.prototxt
cat >want <<'EOF'
lenet.log:36:21: error: weight of linear has type f32[120,256], but the input f32[1,400] has 400 features
    %8 = linear(%7, $fc1.weight, $fc1.bias) : f32[1,120] @ "examples/lenet/lenet.py:30"
                    ^~~~~~~~~~~
ptcc: note: --input x=1x1x32x32: 7 result annotations disagree with the new shapes and were ignored (--emit=log writes the trace with the new ones)
EOF
same want
[ ! -e lenet.prototxt ] || fail "lenet: a prototxt written after an error"
# a view with hard-coded sizes in place of the flatten: the error is at the view
sed 's/flatten(%6, start_dim=1)/view(%6, [1, 256])/' lenet.log >lenet-view.log
run 0 -- --check lenet-view.log
run 1 -- --check lenet-view.log --input 2x1x28x28
cat >want <<'EOF'
lenet-view.log:34:17: error: cannot view f32[2,16,4,4] (512 elements) to 256 elements
  %7 = view(%6, [1, 256]) : f32[1,256] @ "examples/lenet/lenet.py:29"
                ^~~~~~~~
ptcc: note: --input 2x1x28x28: 6 result annotations disagree with the new shapes and were ignored (--emit=log writes the trace with the new ones)
EOF
same want

# 4. annotations that are wrong for another reason than --input stay errors
# without --input, a stale annotation is the error it always was
sed 's/stride=\[2, 2\], padding=\[1, 1\]/stride=[1, 1], padding=[1, 1]/' small_cnn.log >stale.log
run 1 -- --check stale.log
head -n 1 err >err1
echo "stale.log:16:102: error: %1 is annotated f32[1,8,16,16], but its inferred type is f32[1,8,32,32]" >want
diff -u want err1 || fail "a stale annotation without --input"
# so it is with --input giving the declared shape: nothing was changed to explain it
run 1 -- --check stale.log --input x=1x3x32x32
head -n 1 err >err1
diff -u want err1 || fail "a stale annotation with --input of the declared shape"
# a dtype that disagrees: --input keeps dtypes, so it is not a stale shape
sed 's/^\(    %1 = conv2d(.*\) : f32\[1,8,16,16\]/\1 : f16[1,8,16,16]/' small_cnn.log >dtype.log
grep -q ': f16\[1,8,16,16\]' dtype.log || fail "test setup: no f16 annotation"
run 1 -- --check dtype.log --input x=1x3x64x48
head -n 1 err >err1
echo "dtype.log:16:102: error: %1 is annotated f16[1,8,16,16], but its inferred type is f32[1,8,32,24]" >want
diff -u want err1 || fail "a dtype annotation with --input"

# 5. usage errors: exit status 2, the message and the usage hint, nothing written
usage() { # MESSAGE -- ARGS...
	printf 'ptcc: error: %s\n%s\n' "$1" "Try 'ptcc --help' for more information." >want
	shift 2
	run 2 -- "$@" -o none.prototxt
	same want
	[ ! -s out ] && [ ! -e none.prototxt ] || fail "ptcc $*: wrote something"
}
usage '--input y=1x3x8x8: the trace has no input named "y"; its input is "x"' -- small_cnn.log --input y=1x3x8x8
usage '--input c=1x2x8x8: the trace has no input named "c"; its inputs are "a" and "b"' -- two.log --input c=1x2x8x8
usage '--input 1x3x8x8: a shape for input 2 by position, but the trace has only 1 input ("x")' -- \
	small_cnn.log --input 1x3x16x16 --input 1x3x8x8
usage '--input 1x2x9x9: a shape for input 3 by position, but the trace has only 2 inputs ("a" and "b")' -- \
	two.log --input 1x2x8x8 --input 1x2x8x8 --input 1x2x9x9
usage '--input x=1x3x8x8: input "x" is already set by --input 1x3x16x16' -- \
	small_cnn.log --input 1x3x16x16 --input x=1x3x8x8
usage '--input x=1x3x8x8: input "x" is already set by --input x=1x3x16x16' -- \
	small_cnn.log --input x=1x3x16x16 --input x=1x3x8x8
usage "--input x=1x3xfoo: 'foo' is not a dimension; a shape is written like 1x3x224x224" -- \
	small_cnn.log --input x=1x3xfoo
usage "--input 1x3x8.5: '8.5' is not a dimension; a shape is written like 1x3x224x224" -- \
	small_cnn.log --input 1x3x8.5
usage '--input x=1x3xx8: dimension 3 is empty; a shape is written like 1x3x224x224' -- \
	small_cnn.log --input x=1x3xx8
usage '--input x=1x0x8x8: dimension 2 is 0; every dimension must be positive' -- \
	small_cnn.log --input x=1x0x8x8
usage '--input x=1x3x-8x8: dimension 3 is -8; every dimension must be positive' -- \
	small_cnn.log --input x=1x3x-8x8
usage '--input x=: no shape; the argument is NAME=DIMS or DIMS, e.g. x=1x3x224x224' -- \
	small_cnn.log --input x=
usage "--input =1x3x8x8: the name before '=' is empty" -- small_cnn.log --input =1x3x8x8
usage '--input x=99999999999999999999: dimension 1 is too large' -- small_cnn.log --input x=99999999999999999999
usage '--input x=1048576x1048576x1048576: more than 2^60 elements' -- small_cnn.log --input x=1048576x1048576x1048576
# an input without a name is shown by its handle, and set by position
sed 's/^input %0 "x" /input %0 /' small_cnn.log >anon.log
usage '--input x=1x3x8x8: the trace has no input named "x"; its input is %0' -- anon.log --input x=1x3x8x8
run 0 -- --emit=summary anon.log --input 1x3x8x8
grep -q '^input: *%0 f32\[1,3,8,8\]$' out || { cat out; fail "an input without a name, by position"; }
# the option is in the help
run 0 -- --help
grep -q '^  --input NAME=DIMS  ' out || fail "--help does not describe --input"
echo ok
