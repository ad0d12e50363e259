# proc_lib.sh - sourced by cli_lib.sh and daemon_lib.sh: stopping at exit
# exactly the processes a test started (their pids in the array PIDS).

# ours PID - is PID still a process below this shell?  A pid in PIDS whose
# process ended earlier in the test may have been given to another program
# since (pid_max can be 32768, and CI starts processes by the thousand):
# cleanup signals only our own.
ours() {
	local p=$1 s
	case $p in '' | *[!0-9]*) return 1 ;; esac
	while [ "$p" -gt 1 ]; do
		{ read -r s <"/proc/$p/stat"; } 2>/dev/null || return 1
		s=${s##*) } # "STATE PPID ...", after the command name
		s=${s#* }
		p=${s%% *}
		[ "$p" = "$$" ] && return 0
	done
	return 1
}

# stop_ours GRACE - SIGTERM to every process of PIDS still ours, GRACE
# seconds for them to go, then SIGKILL to those left.
stop_ours() {
	local p
	for p in "${PIDS[@]}"; do
		if ours "$p"; then kill -TERM "$p" 2>/dev/null || true; fi
	done
	sleep "$1"
	for p in "${PIDS[@]}"; do
		if ours "$p"; then kill -KILL "$p" 2>/dev/null || true; fi
	done
}
