#!/usr/bin/env bash
# fuzz/campaign.sh CPU_SECONDS [TARGET...] - a long fuzzing campaign that is
# measured in CPU time, not wall time.  Each target runs (PPCP_FUZZ_PARALLEL
# at a time, default 2) in chunks of at most 600 s until the fuzzer process
# has used CPU_SECONDS of user+system time in this work directory, so a busy
# machine makes the campaign longer, not shorter.  The count is kept in
# $WORK/<target>.cpu, so running the script again with the same budget
# resumes where it stopped, and with a larger budget goes on from there.
#
# What the fuzzer learns stays in $WORK/<target>/ (seeded from the committed
# corpus); fold it back with `-merge=1` (fuzz/README.md).  Every chunk
# appends one line to $WORK/campaign.log: time, target, CPU seconds so far,
# runs, coverage, features, result.  A finding stops that target; its input
# is in $WORK/artifacts/<target>/ and the script exits non-zero at the end.
#
# Build first with fuzz/run.sh (any SECONDS, e.g. `fuzz/run.sh 1`), or set
# PPCP_FUZZ_BUILD to a build directory of fuzz/CMakeLists.txt.
set -u

budget=${1:-}
case $budget in '' | *[!0-9]*) echo "usage: $0 CPU_SECONDS [TARGET...]" >&2; exit 2 ;; esac
shift
root=$(cd "$(dirname "$0")/.." && pwd)
build=${PPCP_FUZZ_BUILD:-$root/build-fuzz}
work=${PPCP_FUZZ_WORK:-$build/work}
parallel=${PPCP_FUZZ_PARALLEL:-2}
targets=${*:-server_established client_established server client msg frame hello disco}
log=$work/campaign.log
mkdir -p "$work"
TIMEFORMAT='%U %S'
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

for t in $targets; do
	[ -x "$build/fuzz_$t" ] || { echo "campaign.sh: no $build/fuzz_$t (build with fuzz/run.sh 1)" >&2; exit 2; }
done

# run_target T: chunks until the budget is spent or the fuzzer reports.
run_target() {
	local t=$1 dir=$work/$1 art=$work/artifacts/$1 acct=$work/$1.cpu
	local used chunk rc cpu u s last
	mkdir -p "$dir" "$art"
	[ -n "$(ls -A "$dir")" ] || cp -R "$root/fuzz/corpus/$t/." "$dir/"
	used=$(cat "$acct" 2>/dev/null || echo 0)
	while [ "$used" -lt "$budget" ]; do
		chunk=$((budget - used))
		[ "$chunk" -gt 600 ] && chunk=600
		[ "$chunk" -lt 10 ] && chunk=10
		# bash's time keyword: the CPU time of the fuzzer (a child), on
		# the last line of what it writes to the block's stderr.
		{
			time nice -n 10 "$build/fuzz_$t" -max_total_time="$chunk" -timeout=10 \
				-rss_limit_mb=2048 -print_final_stats=1 -dict="$root/fuzz/ppcp.dict" \
				-artifact_prefix="$art/" "$dir" "$root/fuzz/corpus/$t" \
				>"$work/$t.chunk.log" 2>&1
		} 2>"$work/$t.time"
		rc=$?
		read -r u s < <(tail -n 1 "$work/$t.time") || { u=0; s=0; }
		cpu=$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%d", u + s + 0.5 }')
		used=$((used + cpu))
		echo "$used" >"$acct"
		last=$(grep -E '^#[0-9]+[[:space:]]' "$work/$t.chunk.log" | tail -1)
		printf '%s %-20s cpu %6ss runs %-10s cov %-5s ft %-6s %s\n' "$(date -u +%FT%TZ)" "$t" "$used" \
			"$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t.chunk.log")" \
			"$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")" \
			"$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")" \
			"$([ $rc -eq 0 ] && echo ok || echo "FINDING exit $rc")" >>"$log"
		if [ $rc -ne 0 ]; then
			cp "$work/$t.chunk.log" "$work/$t.finding.log"
			return 1
		fi
	done
	return 0
}

failed=""
running=0
declare -A pids=()
for t in $targets; do
	while [ "$running" -ge "$parallel" ]; do
		wait -n
		running=$((running - 1))
	done
	run_target "$t" &
	pids[$t]=$!
	running=$((running + 1))
done
for t in $targets; do
	wait "${pids[$t]}" || failed="$failed $t"
done
echo "=== campaign log ($log)"
cat "$log"
if [ -n "$failed" ]; then
	echo "campaign.sh: findings in:$failed (logs $work/<target>.finding.log)" >&2
	exit 1
fi
echo "campaign.sh: $budget CPU-seconds per target, no findings"
