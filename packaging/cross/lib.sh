# Shell functions the cross-build scripts share (sourced, not run).

# Stop with a message on standard error.
die() {
    echo "$*" >&2
    exit 1
}

# Run a command with its output in a log file, shown (its end) only when it fails.
quietly() {
    local log=$1
    shift
    "$@" >"$log" 2>&1 || {
        tail -n 20 "$log" >&2
        die "failed: $* (log: $log)"
    }
}
