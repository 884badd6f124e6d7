#!/bin/sh
# The back end without torch: every tests/traces/lower-*.log (with small_cnn.log) compiled at -O0, -O1
# and -O2 for each target; the prototxts must equal NAME.prototxt.golden byte for byte, and the
# caffemodels (protoc --decode_raw) NAME.caffemodel.golden, and the net between the back end's passes
# (--dump-net) NAME.net.golden.  Together the traces reach every row of the lowering table
# (tests/traces/record_lowerings.py says how they were made).
# PTCC_UPDATE_GOLDEN=1 rewrites the golden files: review `git diff tests/traces` before committing.
. "$(dirname "$0")/setup.sh"
cd "$PTCC_SRCDIR/tests/traces" || exit 99
have_protoc=1
command -v protoc >/dev/null 2>&1 || have_protoc=0
if [ $have_protoc = 0 ] && [ -n "${CI:-}" ]; then
	fail "protoc is missing (scripts/install-deps installs protobuf-compiler)"
fi
targets="caffe caffe-master opencv"
n=0
bad=0
for log in small_cnn.log lower-*.log; do
	name=${log%.log}
	: >"$T/$name.prototxt"
	: >"$T/$name.caffemodel"
	for level in 0 1 2; do
		for target in $targets; do
			out="$T/O$level-$target"
			run_ptcc -O$level --target=$target -o "$out.prototxt" -w "$out.caffemodel" "$log" ||
				fail "$name: -O$level --target=$target did not compile"
			{ echo "### -O$level --target=$target"; cat "$out.prototxt"; } >>"$T/$name.prototxt"
			[ $have_protoc = 1 ] || continue
			echo "### -O$level --target=$target" >>"$T/$name.caffemodel"
			if [ "$target" != caffe ] && cmp -s "$out.caffemodel" "$T/O$level-caffe.caffemodel"; then
				echo "(the same bytes as --target=caffe)" >>"$T/$name.caffemodel"
			else
				protoc --decode_raw <"$out.caffemodel" >>"$T/$name.caffemodel" || fail "$name: protoc --decode_raw"
			fi
			n=$((n + 1))
		done
	done
	# the back end's net between passes (--dump-net), at two settings
	: >"$T/$name.net"
	for setting in "-O1 --target=caffe" "-O2 --target=opencv"; do
		for phase in lower barriers fuse; do
			# shellcheck disable=SC2086
			run_ptcc $setting --dump-net=$phase -o "$T/d.prototxt" -w "$T/d.caffemodel" "$log" >>"$T/$name.net" ||
				fail "$name: --dump-net=$phase $setting"
		done
	done
	for kind in prototxt caffemodel net; do
		[ $kind != caffemodel ] || [ $have_protoc = 1 ] || continue
		if [ "${PTCC_UPDATE_GOLDEN:-0}" = 1 ]; then
			cp "$T/$name.$kind" "$name.$kind.golden"
		elif ! diff -u "$name.$kind.golden" "$T/$name.$kind" >"$T/diff"; then
			head -60 "$T/diff"
			echo "$name: the $kind differs from tests/traces/$name.$kind.golden"
			bad=1
		fi
	done
done
[ $bad = 0 ] || fail "the back end's output changed (PTCC_UPDATE_GOLDEN=1 rewrites the golden files)"
[ $have_protoc = 1 ] || echo "note: no protoc here, so the caffemodels were not compared"
echo "$n compilations equal their golden files"
