#!/bin/sh
# tests/fuzz/run.sh: run each libFuzzer target for SECONDS with its corpus and dictionary
# (`make fuzz FUZZ_SECONDS=N [FUZZ_TARGETS="trace ..."]`).  DIR is tests/fuzz/build (fuzz.mk's
# output).  Each target's corpus grows in DIR/corpus/TARGET (the seeds are read from
# DIR/seeds/TARGET, not written); crashers, leaks, hangs (-timeout) and OOMs go to
# DIR/crashers/TARGET/, the libFuzzer log to DIR/logs/TARGET.log.  One process and one worker per
# target, one target at a time.  The status is 1 if any target found something; a summary line per
# target gives libFuzzer's final numbers.
#
# Every sanitizer report is fatal unless UBSAN_OPTIONS/ASAN_OPTIONS say otherwise; a campaign that
# should go on past known reports: FUZZ_FLAGS='-ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1
# -fork=1' UBSAN_OPTIONS=halt_on_error=0:print_stacktrace=1.
#
# usage: run.sh DIR SECONDS TARGET...
set -u
dir=$1
seconds=$2
shift 2
: "${UBSAN_OPTIONS:=halt_on_error=1:print_stacktrace=1}"
: "${ASAN_OPTIONS:=detect_leaks=1}"
export UBSAN_OPTIONS ASAN_OPTIONS
status=0
for t in "$@"; do
	bin=$dir/fuzz_$t
	[ -x "$bin" ] || { echo "fuzz: no $bin (make fuzz-build)"; exit 2; }
	mkdir -p "$dir/corpus/$t" "$dir/crashers/$t" "$dir/logs"
	dict=
	maxlen=8192
	case $t in
	trace*) dict=-dict=$dir/trace.dict ;;
	onnx) dict=-dict=$dir/onnx.dict; maxlen=131072 ;; # (the seed exports are up to 90 KB)
	esac
	log=$dir/logs/$t.log
	# -close_fd_mask=3: the diagnostics of every input would cost more than the input; the
	# sanitizers' reports still come through (libFuzzer hands them its copy of stderr)
	# shellcheck disable=SC2086
	"$bin" $dict -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len="$maxlen" \
		-close_fd_mask=3 -print_final_stats=1 -artifact_prefix="$dir/crashers/$t/" \
		${FUZZ_FLAGS:-} "$dir/corpus/$t" "$dir/seeds/$t" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
	last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
	cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
	ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
	corp=$(echo "$last" | sed -n 's/.* corp: \([0-9]*\/[^ ]*\).*/\1/p')
	found=$(find "$dir/crashers/$t" -type f | wc -l)
	echo "fuzz_$t: ${seconds}s, ${execs:-?} execs (${speed:-?}/s), cov ${cov:-?} ft ${ft:-?}," \
		"corpus ${corp:-?}, exit $rc, $found file(s) in $dir/crashers/$t"
	if [ "$rc" -ne 0 ]; then
		status=1
		grep -E 'ERROR: |SUMMARY: |runtime error|^MS: |Test unit written' "$log" |
			head -n 20
	fi
done
exit "$status"
