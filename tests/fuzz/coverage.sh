#!/bin/sh
# tests/fuzz/coverage.sh: the line coverage that each fuzz target's corpus reaches (`make
# fuzz-coverage`).  DIR is tests/fuzz/build-cov (fuzz.mk's targets built with clang's source-based
# coverage); each target runs every input of CORPUS/TARGET and DIR/seeds/TARGET once (-runs=0),
# and llvm-cov reports the lines of the core's files that ran, per file, for each target and for
# all together.
#
# usage: coverage.sh DIR CORPUS TARGET...
set -eu
dir=$1
corpus=$2
shift 2
for tool in llvm-profdata llvm-cov; do
	command -v "$tool" >/dev/null || { echo "fuzz-coverage: no $tool (scripts/install-deps)"; exit 2; }
done
rm -rf "$dir/profiles"
mkdir -p "$dir/profiles"
for t in "$@"; do
	mkdir -p "$corpus/$t"
	LLVM_PROFILE_FILE="$dir/profiles/$t.profraw" "$dir/fuzz_$t" -runs=0 -close_fd_mask=3 \
		-rss_limit_mb=4096 -timeout=30 "$corpus/$t" "$dir/seeds/$t" >"$dir/profiles/$t.log" 2>&1 ||
		{ echo "fuzz-coverage: fuzz_$t failed (log: $dir/profiles/$t.log)"; exit 1; }
	llvm-profdata merge -sparse "$dir/profiles/$t.profraw" -o "$dir/profiles/$t.profdata"
	n=$(ls "$corpus/$t" | wc -l)
	echo "fuzz_$t: $n corpus inputs; lines run per file:"
	# the core's own sources (src/*.c, the lexer and parser through their #line), not protobuf-c's
	llvm-cov report "$dir/fuzz_$t" -instr-profile="$dir/profiles/$t.profdata" \
		-ignore-filename-regex='(tests/fuzz/|proto/|/usr/)' |
		awk '$8 ~ /^[0-9]+$/ && $8 > 0 { f = $1; sub(/.*\//, "", f);
			printf "  %-16s %8s lines, %7s run\n", f, $8, $10 }'
done
