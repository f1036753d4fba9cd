#!/usr/bin/env bash
# The durable write path alone, halyard against redis-server appendfsync always, side by side
# (issue 17, docs/performance.md).
#
#   bench/write_path.sh /abs/path/to/halyard            SET at -P 1 and -P 16, ratios
#   bench/write_path.sh /abs/path/to/halyard --perf DIR  also record a perf profile of halyard
#                                                        (cpu-clock, DWARF call graphs) per
#                                                        pipeline depth into DIR
#
# Shorter than `make bench` (SET only, no memory phase): the measure to repeat after each change
# of the write path. CPU time per request (user + sys of every thread, from /proc) is the figure
# to trust on a shared machine; throughput is printed next to it.
#
# Environment: WP_N (requests at -P 1, default 100000), WP_N_PIPE (at -P 16, default 500000),
# WP_ROUNDS (default 3), WP_CLIENTS (default 50), WP_HALYARD_ARGS (more flags for halyard, e.g.
# "--snapshot-log-percent 400"). Servers are stopped by PID on exit.
set -euo pipefail

N=${WP_N:-100000}
N_PIPE=${WP_N_PIPE:-500000}
ROUNDS=${WP_ROUNDS:-3}
CLIENTS=${WP_CLIENTS:-50}
RANGE=100000
PY=/usr/bin/python3

die() { echo "write_path: $*" >&2; exit 1; }

[ $# -ge 1 ] || die "usage: bench/write_path.sh /abs/path/to/halyard [--perf DIR]"
HALYARD_BIN=$1
[ -x "$HALYARD_BIN" ] || die "$HALYARD_BIN is not an executable"
PERF_DIR=""
if [ $# -ge 3 ] && [ "$2" = "--perf" ]; then
    PERF_DIR=$3
    mkdir -p "$PERF_DIR"
    command -v perf >/dev/null || die "perf not found (Debian: linux-perf)"
fi
REDIS_BIN=$(command -v redis-server) || die "redis-server not found"
command -v redis-benchmark >/dev/null || die "redis-benchmark not found (redis-tools)"

WORK=$(mktemp -d /tmp/halyard-wp.XXXXXX)
HY_PID=""
AOF_PID=""

. "$(dirname "${BASH_SOURCE[0]}")/procs.sh" # stop_pid
cleanup() {
    stop_pid "$HY_PID"
    stop_pid "$AOF_PID"
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
wait_ready() { # wait_ready PORT PID LOG
    local i
    for i in $(seq 300); do
        kill -0 "$2" 2>/dev/null || { tail -20 "$3" >&2; die "server exited during start-up"; }
        [ "$(redis-cli -h 127.0.0.1 -p "$1" PING 2>/dev/null)" = "PONG" ] && return 0
        sleep 0.05
    done
    die "no PONG on port $1 within 15 s"
}
# cpu_ticks PID: CPU spent for the writes, off the server's threads too
. "$(dirname "${BASH_SOURCE[0]}")/cpu.sh"

HY_PORT=$(free_port)
mkdir -p "$WORK/hy" "$WORK/aof"
# shellcheck disable=SC2086 # WP_HALYARD_ARGS is a list of flags
"$HALYARD_BIN" --bind 127.0.0.1 --port "$HY_PORT" --data-dir "$WORK/hy" --log-level warn \
    ${WP_HALYARD_ARGS:-} >"$WORK/hy.log" 2>&1 &
HY_PID=$!
wait_ready "$HY_PORT" "$HY_PID" "$WORK/hy.log"
AOF_PORT=$(free_port)
while [ "$AOF_PORT" = "$HY_PORT" ]; do AOF_PORT=$(free_port); done
"$REDIS_BIN" --port "$AOF_PORT" --bind 127.0.0.1 --save "" --appendonly yes \
    --appendfsync always --dir "$WORK/aof" >"$WORK/aof.log" 2>&1 &
AOF_PID=$!
wait_ready "$AOF_PORT" "$AOF_PID" "$WORK/aof.log"

RESULTS="$WORK/results.txt"
: >"$RESULTS"
run() { # run NAME PORT PID PIPELINE N
    local c0 c1 out
    c0=$(cpu_ticks "$3")
    out=$(redis-benchmark -h 127.0.0.1 -p "$2" -t set -c "$CLIENTS" -r $RANGE -n "$5" -P "$4" \
        -q --csv 2>"$WORK/err") || { cat "$WORK/err" >&2; die "redis-benchmark failed on $1"; }
    c1=$(cpu_ticks "$3")
    echo "$out" | awk -F'","' -v s="$1" -v p="$4" -v n="$5" -v d="$((c1 - c0))" \
        -v hz="$(getconf CLK_TCK)" '{ gsub(/"/, "", $1); gsub(/"/, "", $2) }
        $1 == "SET" { printf "%s %s %s %.3f\n", s, p, $2, d / hz * 1e6 / n }' >>"$RESULTS"
}

echo "write_path — $(date -u '+%Y-%m-%d %H:%M UTC') — $(nproc) CPU(s), load $(cut -d' ' -f1 /proc/loadavg)" \
     "— halyard ${WP_HALYARD_ARGS:-(defaults)} — SET -c $CLIENTS -r $RANGE," \
     "-n $N at -P 1, -n $N_PIPE at -P 16, $ROUNDS rounds, medians"
for round in $(seq "$ROUNDS"); do
    for pipe in 1 16; do
        n=$N
        [ "$pipe" -gt 1 ] && n=$N_PIPE
        if [ $((round % 2)) -eq 1 ]; then
            run halyard "$HY_PORT" "$HY_PID" "$pipe" "$n"
            run aof "$AOF_PORT" "$AOF_PID" "$pipe" "$n"
        else
            run aof "$AOF_PORT" "$AOF_PID" "$pipe" "$n"
            run halyard "$HY_PORT" "$HY_PID" "$pipe" "$n"
        fi
    done
done

if [ -n "$PERF_DIR" ]; then
    for pipe in 1 16; do
        n=$N
        [ "$pipe" -gt 1 ] && n=$N_PIPE
        perf record -q -e cpu-clock -F 2000 --call-graph dwarf,16384 -p "$HY_PID" \
            -o "$PERF_DIR/set-P$pipe.data" 2>"$WORK/perf.err" &
        perf_pid=$!
        sleep 0.5 # perf attaches asynchronously; the run below is long enough for this
        redis-benchmark -h 127.0.0.1 -p "$HY_PORT" -t set -c "$CLIENTS" -r $RANGE -n "$n" \
            -P "$pipe" -q >/dev/null
        kill -INT "$perf_pid"
        wait "$perf_pid" || true
        echo "profile: $PERF_DIR/set-P$pipe.data (perf report -i ... --no-children)"
    done
fi

"$PY" - "$RESULTS" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
rps, cpu = {}, {}
for s, p, r, us in rows:
    rps.setdefault((s, int(p)), []).append(float(r))
    cpu.setdefault((s, int(p)), []).append(float(us))
print("%-8s %12s %12s %8s %14s %14s %8s" % ("pipeline", "halyard rps", "aof rps", "ratio",
      "halyard us/op", "aof us/op", "ratio"))
for p in (1, 16):
    h, a = statistics.median(rps[("halyard", p)]), statistics.median(rps[("aof", p)])
    hc, ac = statistics.median(cpu[("halyard", p)]), statistics.median(cpu[("aof", p)])
    print("%-8d %12.0f %12.0f %8.2f %14.2f %14.2f %8.2f" % (p, h, a, h / a, hc, ac, hc / ac))
print("runs (rps, us/op):", {"%s P%d" % k: list(zip(rps[k], cpu[k])) for k in rps})
EOF
