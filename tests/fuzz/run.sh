#!/bin/sh
# tests/fuzz/run.sh: run each libFuzzer target for SECONDS with its corpus and dictionary
# (`make fuzz FUZZ_SECONDS=N [FUZZ_TARGETS="trace ..."]`).  DIR is tests/fuzz/build (fuzz.mk's
# output).  Each target's corpus grows in DIR/corpus/TARGET (the seeds are read from
# DIR/seeds/TARGET, not written); crashers, leaks, hangs (-timeout) and OOMs go to
# DIR/crashers/TARGET/, the libFuzzer log to DIR/logs/TARGET.log.  One process and one worker per
# target, FUZZ_JOBS targets at a time (default 1).  The status is 1 if any target found something; a summary line per
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
# One target: its campaign, then its summary line (and what it found) in DIR/logs/TARGET.summary and
# its exit status in DIR/logs/TARGET.rc.
run_one() {
	t=$1
	bin=$dir/fuzz_$t
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
	{
		echo "fuzz_$t: ${seconds}s, ${execs:-?} execs (${speed:-?}/s), cov ${cov:-?} ft ${ft:-?}," \
			"corpus ${corp:-?}, exit $rc, $found file(s) in $dir/crashers/$t"
		[ "$rc" -eq 0 ] || grep -E 'ERROR: |SUMMARY: |runtime error|^MS: |Test unit written' "$log" |
			head -n 20
	} >"$dir/logs/$t.summary"
	echo "$rc" >"$dir/logs/$t.rc"
}

for t in "$@"; do
	[ -x "$dir/fuzz_$t" ] || { echo "fuzz: no $dir/fuzz_$t (make fuzz-build)"; exit 2; }
done
# FUZZ_JOBS targets at a time (default 1; CI runs its smokes 2 at a time, one per core)
jobs=${FUZZ_JOBS:-1}
running=0
for t in "$@"; do
	run_one "$t" &
	running=$((running + 1))
	if [ "$running" -ge "$jobs" ]; then
		wait
		running=0
	fi
done
wait
status=0
for t in "$@"; do
	cat "$dir/logs/$t.summary"
	[ "$(cat "$dir/logs/$t.rc")" = 0 ] || status=1
done
exit "$status"
