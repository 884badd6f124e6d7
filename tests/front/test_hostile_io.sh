#!/bin/sh
# Hostile files (issue 11): inputs that are not regular files never hang ptcc, outputs never
# overwrite an input or each other, a weights file that shrinks is an error and not a SIGBUS, and
# a signal while writing leaves no temporary file.  Every case exits 2 with the exact message.
. "$(dirname "$0")/setup.sh"
TR=$PTCC_SRCDIR/tests/traces/small_cnn.log
cp "$TR" "$PTCC_SRCDIR/tests/traces/small_cnn.safetensors" "$T/"
cd "$T" || fail "cd $T"

# expect STATUS MESSAGE -- command...: the exit status and the whole of stderr
expect() {
	want=$1 msg=$2
	shift 3
	"$@" >"$T/out" 2>"$T/err"
	got=$?
	[ "$got" = "$want" ] || { cat "$T/err"; fail "$*: status $got, want $want"; }
	printf '%s\n' "$msg" | cmp -s - "$T/err" || {
		printf 'want: %s\ngot:  ' "$msg"
		cat "$T/err"
		fail "$*: stderr differs"
	}
}
no_temporaries() {
	what=$1
	set -- "$T"/*.tmp*
	[ ! -e "$1" ] || { ls "$T"; fail "$what: a temporary file was left behind"; }
}

# ---- inputs: a regular file or an error, never a wait ------------------------------------------
mkfifo fifo.log fifo.safetensors
mkdir dir.log
sed 's/small_cnn.safetensors/fifo.safetensors/' small_cnn.log >fifo-w.log
sed 's/small_cnn.safetensors/dir.log/' small_cnn.log >dir-w.log
expect 2 "ptcc: error: 'fifo.log' is not a regular file (a FIFO)" -- timeout 10 "$PTCC" fifo.log
expect 2 "ptcc: error: 'dir.log' is a directory" -- "$PTCC" dir.log
expect 2 "ptcc: error: '/dev/zero' is not a regular file (a character device)" \
	-- timeout 10 "$PTCC" /dev/zero
expect 2 "ptcc: error: '/dev/urandom' is not a regular file (a character device)" \
	-- timeout 10 "$PTCC" /dev/urandom
expect 2 "fifo.safetensors: error: the weights file is not a regular file (a FIFO)" \
	-- timeout 10 "$PTCC" fifo-w.log -o fifo-w.prototxt
expect 2 "fifo.safetensors: error: the weights file is not a regular file (a FIFO)" \
	-- timeout 10 "$PTCC" --check fifo-w.log
expect 2 "dir.log: error: the weights file is a directory" -- "$PTCC" --check dir-w.log
# the size limit from fstat, before a byte is read (a sparse file: no disk space)
if truncate -s 4294967295 big.log 2>/dev/null; then
	expect 2 "ptcc: error: 'big.log' is larger than 4 GiB (4294967295 bytes), the most a trace may hold" \
		-- "$PTCC" big.log
	rm -f big.log
fi

# --max-errors: once the budget is spent the rest of the trace is not even read (--stats counts
# the lines the lexer saw)
{
	printf 'ptcc-trace 1\nweights "w.safetensors"\ninput %%0 : f32[1]\n'
	i=1
	while [ $i -le 20000 ]; do
		printf '%%%d = relu(%%0 ;\n' $i
		i=$((i + 1))
	done
} >many.log
"$PTCC" --stats --emit=none --max-errors=2 many.log 2>err
[ $? = 1 ] || fail "--max-errors=2: status"
grep -q '^many.log: error: too many errors (2), stopping$' err || { cat err; fail "no 'too many errors'"; }
lines=$(sed -n 's/^ptcc: stats: lines \([0-9]*\) .*/\1/p' err)
[ -n "$lines" ] && [ "$lines" -lt 100 ] || { cat err; fail "--max-errors=2 read on: $lines lines"; }

# ---- outputs: never an input, never each other, only regular files ------------------------------
cp small_cnn.log keep.log
ln small_cnn.log hardlink.log
ln -s target.prototxt link.prototxt
ln -s small_cnn.log link-to-log.prototxt
expect 2 "ptcc: error: -o small_cnn.log is the input trace; ptcc never writes over its input" \
	-- "$PTCC" small_cnn.log -o small_cnn.log
expect 2 "ptcc: error: -o ./small_cnn.log is the input trace; ptcc never writes over its input" \
	-- "$PTCC" --emit=log small_cnn.log -o ./small_cnn.log
expect 2 "ptcc: error: -o hardlink.log is the input trace; ptcc never writes over its input" \
	-- "$PTCC" small_cnn.log -o hardlink.log
expect 2 "ptcc: error: -w small_cnn.safetensors is the weights file; ptcc never writes over its input" \
	-- "$PTCC" small_cnn.log -w small_cnn.safetensors
expect 2 "ptcc: error: -o small_cnn.safetensors is the weights file; ptcc never writes over its input" \
	-- "$PTCC" --emit=log small_cnn.log -o small_cnn.safetensors
expect 2 "ptcc: error: -o net.prototxt and -w ./net.prototxt are the same file; each output needs its own" \
	-- "$PTCC" small_cnn.log -o net.prototxt -w ./net.prototxt
expect 2 "ptcc: error: -o net.caffemodel and the caffemodel net.caffemodel are the same file; each output needs its own" \
	-- "$PTCC" small_cnn.log -o net.caffemodel
: >old.prototxt
ln old.prototxt old.caffemodel
expect 2 "ptcc: error: -o old.prototxt and -w old.caffemodel are the same file; each output needs its own" \
	-- "$PTCC" small_cnn.log -o old.prototxt -w old.caffemodel
expect 2 "ptcc: error: -o /dev/null is not a regular file (a character device); ptcc writes only regular files" \
	-- "$PTCC" --emit=log small_cnn.log -o /dev/null
expect 2 "ptcc: error: -o dir.log is a directory" -- "$PTCC" small_cnn.log -o dir.log
# a symbolic link is refused, dangling or not (docs/ptcc.1): the rename would replace the link
expect 2 "ptcc: error: -o link.prototxt is a symbolic link; ptcc would replace the link itself, not its target (name the target instead)" \
	-- "$PTCC" small_cnn.log -o link.prototxt
expect 2 "ptcc: error: -o link-to-log.prototxt is a symbolic link; ptcc would replace the link itself, not its target (name the target instead)" \
	-- "$PTCC" --emit=log small_cnn.log -o link-to-log.prototxt
[ -L link.prototxt ] && [ ! -e target.prototxt ] || fail "the symbolic link was changed"
cmp -s small_cnn.log keep.log || fail "the trace was written over"
cmp -s "$PTCC_SRCDIR/tests/traces/small_cnn.safetensors" small_cnn.safetensors ||
	fail "the weights file was written over"
[ ! -s old.prototxt ] || fail "old.prototxt was written"
no_temporaries "refused outputs"
# and an output that is only an old file is replaced, as before
"$PTCC" small_cnn.log -o out.prototxt && "$PTCC" small_cnn.log -o out.prototxt ||
	fail "an existing output is not replaced"

# ---- big models, for the cases that need ptcc busy writing --------------------------------------
# make_model NAME COUNT ROWS COLS: a chain of COUNT linear layers with f32[ROWS,COLS] weights of
# zeros (ROWS = COLS for a chain); the weights file is sparse, the caffemodel is not
make_model() {
	name=$1 count=$2 rows=$3 cols=$4 bytes=$(($3 * $4 * 4))
	{
		printf 'ptcc-trace 1\nweights "%s.safetensors"\n' "$name"
		k=0
		while [ $k -lt "$count" ]; do
			printf 'param $w%d : f32[%d,%d]\n' $k "$rows" "$cols"
			k=$((k + 1))
		done
		printf 'input %%0 "x" : f32[1,%d]\n' "$cols"
		k=0
		while [ $k -lt "$count" ]; do
			printf '%%%d = linear(%%%d, $w%d) : f32[1,%d]\n' $((k + 1)) $k $k "$rows"
			k=$((k + 1))
		done
		printf 'output %%%d "y"\n' "$count"
	} >"$name.log"
	header= k=0
	while [ $k -lt "$count" ]; do
		header="$header${header:+,}$(printf '"w%d":{"dtype":"F32","shape":[%d,%d],"data_offsets":[%d,%d]}' \
			$k "$rows" "$cols" $((k * bytes)) $(((k + 1) * bytes)))"
		k=$((k + 1))
	done
	header="{$header}"
	while [ $(((8 + ${#header}) % 8)) != 0 ]; do header="$header "; done
	n=${#header} # below 65536: two bytes of the length
	printf "\\$(printf %03o $((n % 256)))\\$(printf %03o $((n / 256)))\\0\\0\\0\\0\\0\\0%s" \
		"$header" >"$name.safetensors"
	truncate -s $((8 + n + count * bytes)) "$name.safetensors"
	"$PTCC" "$name.log" -o "$name.prototxt" || fail "$name: the model does not compile"
	rm -f "$name.prototxt" "$name.caffemodel"
}
make_model big 1 8192 4096     # one 128 MiB blob, in 512 pieces of the weights pass
make_model chain 512 256 256   # 512 blobs of 256 KiB, one piece each

# stopped_while_writing NAME: start ptcc on the model NAME and stop it while it writes the
# caffemodel (its temporary file is there); the variable pid is ptcc's.  False when ptcc was done
# before it could be stopped.
stopped_while_writing() {
	"$PTCC" "$1.log" -o "$1.prototxt" 2>err &
	pid=$!
	while kill -0 $pid 2>/dev/null; do
		set -- "$1" "$1".caffemodel.tmp*
		if [ -e "$2" ]; then
			kill -STOP $pid 2>/dev/null || break
			set -- "$1" "$1".caffemodel.tmp*
			[ -e "$2" ] && return 0
			kill -CONT $pid
			break
		fi
	done
	wait $pid
	rm -f "$1.prototxt" "$1.caffemodel"
	return 1
}

# SIGTERM (and SIGHUP) while writing: the temporary files are removed, and ptcc dies of the signal
for sig in TERM:15 HUP:1; do # (dash's kill -l gives no numbers; a background job ignores SIGINT)
	num=${sig#*:} sig=${sig%:*}
	tries=0
	until stopped_while_writing big; do
		tries=$((tries + 1))
		[ $tries -lt 20 ] || fail "SIG$sig: ptcc was never caught writing"
	done
	kill -$sig $pid
	kill -CONT $pid
	wait $pid
	got=$?
	[ $got = $((128 + num)) ] || fail "SIG$sig: status $got"
	no_temporaries "SIG$sig"
	[ ! -e big.prototxt ] && [ ! -e big.caffemodel ] || fail "SIG$sig: an output was written"
done

# the file size limit (SIGXFSZ) is a catchable signal too; this one comes without a race
(ulimit -f 1024 && exec "$PTCC" big.log -o big.prototxt) 2>/dev/null
got=$?
[ $got = $((128 + 25)) ] || fail "SIGXFSZ: status $got"
no_temporaries "SIGXFSZ"

# The weights file shrinks while ptcc reads it through its mapping: an error naming the file,
# exit status 2, no temporary file, never a signal.  By default the weights pass reads each blob
# from the file (a read comes short); with PTCC_NO_COPY_PASS=1 the big blob goes to write()
# straight from the mapping (EFAULT) and the chain's are copied by the CPU (SIGBUS, caught).
for copy in "" 1; do
	PTCC_NO_COPY_PASS=$copy
	export PTCC_NO_COPY_PASS
	for name in big chain; do
		cp $name.safetensors keep.safetensors
		size=$(wc -c <$name.safetensors)
		tries=0
		until stopped_while_writing $name; do
			tries=$((tries + 1))
			[ $tries -lt 20 ] || fail "$name shrinks: ptcc was never caught writing"
		done
		truncate -s 4096 $name.safetensors
		kill -CONT $pid
		wait $pid
		got=$?
		what="$name${copy:+ (PTCC_NO_COPY_PASS=1)}"
		[ $got = 2 ] || { cat err; fail "$what: a weights file that shrank: status $got"; }
		printf '%s.safetensors: error: the weights file shrank while ptcc was reading it (it had %d bytes)\n' \
			$name $size | cmp -s - err ||
			{ cat err; fail "$what: a weights file that shrank: the message"; }
		no_temporaries "$what shrinks"
		[ ! -e $name.prototxt ] && [ ! -e $name.caffemodel ] ||
			fail "$what shrinks: an output was written"
		mv keep.safetensors $name.safetensors
	done
done
unset PTCC_NO_COPY_PASS
echo ok
