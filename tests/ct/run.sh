#!/usr/bin/env bash
# run.sh TEST_CT - run the ctgrind check (adversarial.md T47) under valgrind's
# memcheck and fail if any report of a branch or memory index that depends on
# a secret points into PPCP's own code.  Reports inside libcrypto are listed
# (OpenSSL's declassification points, such as the verdict of its tag check)
# but do not fail the test.
set -euo pipefail
bin=$1
if ! command -v valgrind >/dev/null; then
	echo "FAIL: valgrind is not installed (scripts/install-deps.sh installs it)"
	exit 1
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
valgrind --tool=memcheck --track-origins=yes --num-callers=30 --error-limit=no \
	--log-file="$log" "$bin"
# One report: its first line says what, the next "at" line where.
ours=$(awk '
	/(Conditional jump or move depends|Use of uninitialised value|Syscall param)/ { want = 1; what = $0; next }
	want && /(at|by) 0x/ { want = 0; if ($0 ~ /\((conn|frame|hello|msg|crypto|keysched|disco|psk|io|errors)\.c:/) print what "\n" $0 }
' "$log")
theirs=$(grep -c -E 'Conditional jump or move depends|Use of uninitialised value' "$log" || true)
if [ -n "$ours" ]; then
	echo "FAIL: secret-dependent branches or indexes in PPCP code:"
	echo "$ours"
	echo "--- full valgrind log:"
	cat "$log"
	exit 1
fi
echo "ctgrind: no secret-dependent branch or index in PPCP code ($theirs report(s) in total, all outside it)"
grep -E 'Conditional jump|Use of uninit' -A2 "$log" | grep -E 'at 0x' | sort | uniq -c | head -20 || true
