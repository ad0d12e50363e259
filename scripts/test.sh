#!/usr/bin/env bash
# test.sh - install the dependencies, then build and run the whole test
# suite twice: with -Werror in build/, and under AddressSanitizer and
# UndefinedBehaviorSanitizer in build-asan/.  Exits non-zero if anything
# failed; the last line is "N passed, N failed" over both ctest runs.
set -uo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)

step() { printf 'test: %s\n' "$*"; }

bash "$ROOT/scripts/install-deps.sh" || { step "installing dependencies failed"; exit 1; }

total_pass=0
total_fail=0
status=0

# run_suite DIR LABEL CMAKE_ARGS... : configure, build, ctest; adds to the totals.
run_suite() {
	local dir=$1 label=$2 log
	shift 2
	step "$label: configuring $dir"
	if ! cmake -S "$ROOT" -B "$ROOT/$dir" -G Ninja "$@"; then
		step "$label: cmake configure failed"
		status=1
		return
	fi
	step "$label: building"
	if ! cmake --build "$ROOT/$dir"; then
		step "$label: build failed"
		status=1
		return
	fi
	step "$label: running ctest"
	log=$(mktemp)
	(cd "$ROOT/$dir" && ctest --output-on-failure -j2) 2>&1 | tee "$log"
	local rc=${PIPESTATUS[0]}
	# ctest ends with "NN% tests passed, F tests failed out of T".
	local line f t
	line=$(grep -E '[0-9]+ tests? failed out of [0-9]+' "$log" | tail -n1 || true)
	if [ -n "$line" ]; then
		f=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
		t=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\2/' <<<"$line")
		total_pass=$((total_pass + t - f))
		total_fail=$((total_fail + f))
	else
		step "$label: no ctest summary found (no tests ran?)"
		status=1
	fi
	rm -f "$log"
	if [ "$rc" -ne 0 ]; then
		step "$label: ctest failed (exit $rc)"
		status=1
	fi
}

run_suite build "werror" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPPCP_WERROR=ON

export ASAN_OPTIONS=detect_leaks=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
run_suite build-asan "asan+ubsan" -DCMAKE_BUILD_TYPE=Debug -DPPCP_ASAN=ON -DPPCP_UBSAN=ON

echo "$total_pass passed, $total_fail failed"
if [ "$total_fail" -ne 0 ]; then
	status=1
fi
exit "$status"
