# bench/cpu.sh - sourced by the bench scripts that report CPU time per operation (bench.sh,
# cluster.sh, churn.sh, write_path.sh): the one place that reads it from /proc.

cpu_ticks() { # cpu_ticks PID...: user + system clock ticks of the processes (every thread) and
    # of the children they reaped (halyard's forked snapshot encoders, Redis's AOF rewrites)
    local pid
    for pid in "$@"; do
        awk '{ sub(/.*\) /, ""); print $12 + $13 + $14 + $15 }' "/proc/$pid/stat"
    done | awk '{ t += $1 } END { print t + 0 }'
}
