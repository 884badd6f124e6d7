# tests/front/setup.sh: sourced by the front-end tests.
#   PTCC         the compiler under test (the build tree's src/ptcc)
#   PTCC_SRCDIR  the source tree (set by make check; else derived from this file)
#   run_ptcc     runs $PTCC, under valgrind when PTCC_VALGRIND=1 (any error or definite leak fails)
#   fail MSG     prints MSG and exits 1
#   T            a fresh temporary directory, removed on exit
set -u
: "${PTCC_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${PTCC_BUILDDIR:=$PTCC_SRCDIR}"
PTCC=${PTCC:-$PTCC_BUILDDIR/src/ptcc}
export LC_ALL=C NO_COLOR=1
T=$(mktemp -d "${TMPDIR:-/tmp}/ptcc-test.XXXXXX")
trap 'rm -rf "$T"' EXIT
[ -x "$PTCC" ] || { echo "no ptcc at $PTCC"; exit 99; }

# valgrind sees no heap in a static binary: no leak would ever be found
if [ "${PTCC_VALGRIND:-0}" = 1 ] && ! LC_ALL=C readelf -l "$PTCC" | grep -q 'program interpreter'; then
	echo "FAIL: PTCC_VALGRIND=1 needs a dynamic ptcc (./configure --disable-static-ptcc)"
	exit 1
fi

run_ptcc() {
	if [ "${PTCC_VALGRIND:-0}" = 1 ]; then
		valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect "$PTCC" "$@"
	else
		"$PTCC" "$@"
	fi
}

fail() {
	echo "FAIL: $*"
	exit 1
}
