# bench/procs.sh - sourced by the bench scripts that start servers (bench.sh, cluster.sh,
# types.sh, write_path.sh): the one place that stops them.

stop_pid() { # stop_pid PID [NAME]: SIGTERM, wait up to 15 s for exit, SIGKILL as a last resort
    local pid=$1 name=${2:-server} i
    [ -n "$pid" ] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 150); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    echo "${0##*/}: $name (pid $pid) ignored SIGTERM for 15 s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
}
