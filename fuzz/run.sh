#!/usr/bin/env bash
# fuzz/run.sh [SECONDS] - build the libFuzzer targets (fuzz/CMakeLists.txt)
# and run each one for SECONDS (default 60) over a temporary copy of its
# committed corpus, one target at a time, at nice 10.  Exits non-zero if
# the build fails or any target reports a finding (crash, sanitizer report,
# leak, timeout, out of memory).  Findings are kept in
# $BUILD/artifacts/<target>/; README.md says what to do with them.
#
# Environment: PPCP_FUZZ_BUILD (default <repo>/build-fuzz), PPCP_FUZZ_TARGETS
# (space-separated subset, default all), PPCP_FUZZ_JOBS (build jobs, 2).
set -u

secs=${1:-60}
case $secs in '' | *[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;; esac
root=$(cd "$(dirname "$0")/.." && pwd)
build=${PPCP_FUZZ_BUILD:-$root/build-fuzz}
targets=${PPCP_FUZZ_TARGETS:-frame hello msg disco server client server_established client_established}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cmake -S "$root/fuzz" -B "$build" -DCMAKE_C_COMPILER=clang >"$tmp/cmake.log" 2>&1 ||
	{ cat "$tmp/cmake.log" >&2; echo "run.sh: cmake configure failed" >&2; exit 1; }
cmake --build "$build" -j "${PPCP_FUZZ_JOBS:-2}" ||
	{ echo "run.sh: build failed" >&2; exit 1; }
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=""
summary=""
for t in $targets; do
	corpus=$root/fuzz/corpus/$t
	if [ ! -d "$corpus" ]; then
		echo "run.sh: no corpus $corpus" >&2
		failed="$failed $t"
		continue
	fi
	work=$tmp/$t
	art=$build/artifacts/$t
	mkdir -p "$work" "$art"
	cp -R "$corpus/." "$work/"
	echo "=== fuzz_$t: ${secs}s over $(ls "$corpus" | wc -l) seeds"
	nice -n 10 "$build/fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -dict="$root/fuzz/ppcp.dict" -artifact_prefix="$art/" \
		"$work" >"$tmp/$t.log" 2>&1
	rc=$?
	grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|^stat::|ERROR|SUMMARY|invariant|Test unit written' \
		"$tmp/$t.log"
	cp "$tmp/$t.log" "$build/fuzz_$t.log"
	last=$(grep -E '^#[0-9]+[[:space:]]' "$tmp/$t.log" | tail -1)
	cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
	ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$tmp/$t.log")
	eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$tmp/$t.log")
	if [ $rc -ne 0 ]; then
		failed="$failed $t"
		status="FINDING (exit $rc, log $build/fuzz_$t.log)"
	else
		status=ok
	fi
	summary+=$(printf '%-20s runs %-9s exec/s %-6s cov %-5s ft %-6s %s' "$t" "${runs:-?}" \
		"${eps:-?}" "${cov:-?}" "${ft:-?}" "$status")$'\n'
done

echo
echo "=== summary (${secs}s per target)"
printf '%s' "$summary"
n_failed=$(wc -w <<<"$failed")
n_total=$(wc -w <<<"$targets")
echo "fuzz: $((n_total - n_failed)) passed, $n_failed failed"
if [ -n "$failed" ]; then
	echo "run.sh: findings or errors in:$failed" >&2
	exit 1
fi
echo "run.sh: no findings"
