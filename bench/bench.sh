#!/usr/bin/env bash
# halyard vs redis-server, side by side in the same run (issue 2 item 8, docs/architecture.md "Testing").
#
#   bench/bench.sh /abs/path/to/halyard     compare halyard with Debian's redis-server
#   bench/bench.sh --self-test              run redis-server on both sides (checks this script)
#
# Throughput and server CPU time per request (user + sys from /proc, with the children the
# server reaped, such as forked snapshot encoders; one test per run):
# redis-benchmark -t set, then -t get, -c 50 -r 100000 at -P 1 and -P 16, 3 rounds, the order
# of the two servers alternating per round; the table shows medians and halyard/redis ratios.
# `durability: replicated` (issue 17 item 3): a second halyard started with --durability
# replicated (a write acknowledged once written to the log, fdatasync'd within
# fsync-interval-ms) against a redis-server with appendfsync everysec, SET only, in the same
# rounds, with their own table (BENCH_REPLICATED=0 leaves them out).
# Memory (measured first, on fresh processes; BENCH_MEMORY=0 skips it): FLUSHALL, then exactly 1,000,000 distinct small keys (SET key:N xxx) loaded with
# redis-cli --pipe; bytes per key from INFO used_memory (and from process RSS) before/after.
#
# Environment: BENCH_N (requests per test at -P 1, default 200000), BENCH_N_PIPE (at -P 16,
# default 1000000), BENCH_KEYS (default 1000000), BENCH_ROUNDS (default 3).
# Both servers are stopped by PID on exit (trap). Nothing here is a pass/fail test.
set -euo pipefail

N=${BENCH_N:-200000}
N_PIPE=${BENCH_N_PIPE:-1000000}
KEYS=${BENCH_KEYS:-1000000}
ROUNDS=${BENCH_ROUNDS:-3}
CLIENTS=50
RANGE=100000
PY=/usr/bin/python3

die() { echo "bench: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: bench/bench.sh /abs/path/to/halyard | --self-test"
SELF_TEST=0
if [ "$1" = "--self-test" ]; then
    SELF_TEST=1
    HALYARD_BIN=$(command -v redis-server)
else
    HALYARD_BIN=$1
    [ -x "$HALYARD_BIN" ] || die "$HALYARD_BIN is not an executable"
fi
REDIS_BIN=$(command -v redis-server) || die "redis-server not found (scripts/deps.sh installs it)"
command -v redis-benchmark >/dev/null || die "redis-benchmark not found (package redis-tools)"
command -v redis-cli >/dev/null || die "redis-cli not found (package redis-tools)"

WORK=$(mktemp -d /tmp/halyard-bench.XXXXXX)
REDIS_PID=""
AOF_PID=""
HY_PID=""
ES_PID=""
HR_PID=""
REPLICATED=${BENCH_REPLICATED:-1}

. "$(dirname "${BASH_SOURCE[0]}")/procs.sh" # stop_pid

cleanup() {
    stop_pid "$HY_PID" halyard
    stop_pid "$REDIS_PID" redis-server
    if [ -n "${AOF_PID:-}" ]; then stop_pid "$AOF_PID" redis-server; fi
    stop_pid "$ES_PID" redis-server
    stop_pid "$HR_PID" halyard
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_ready() { # wait_ready PORT PID NAME LOG: poll PING until PONG, for at most 15 s
    local port=$1 pid=$2 name=$3 log=$4 i
    for i in $(seq 300); do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "bench: $name exited during start-up; its log:" >&2
            tail -20 "$log" >&2
            exit 1
        fi
        if [ "$(redis-cli -h 127.0.0.1 -p "$port" PING 2>/dev/null)" = "PONG" ]; then
            return 0
        fi
        sleep 0.05
    done
    die "$name did not answer PING on port $port within 15 s"
}

start_redis_like() { # start_redis_like PORT LOG DIR: a redis-server with persistence off
    "$REDIS_BIN" --port "$1" --bind 127.0.0.1 --save "" --appendonly no --dir "$3" >"$2" 2>&1 &
}

REDIS_PORT=$(free_port)
mkdir -p "$WORK/redis" "$WORK/halyard"
start_redis_like "$REDIS_PORT" "$WORK/redis.log" "$WORK/redis"
REDIS_PID=$!
wait_ready "$REDIS_PORT" "$REDIS_PID" redis-server "$WORK/redis.log"

HY_PORT=$(free_port)
while [ "$HY_PORT" = "$REDIS_PORT" ]; do HY_PORT=$(free_port); done
if [ $SELF_TEST -eq 1 ]; then
    start_redis_like "$HY_PORT" "$WORK/halyard.log" "$WORK/halyard"
else
    "$HALYARD_BIN" --bind 127.0.0.1 --port "$HY_PORT" --data-dir "$WORK/halyard/data" \
        --log-level warn >"$WORK/halyard.log" 2>&1 &
fi
HY_PID=$!
wait_ready "$HY_PORT" "$HY_PID" halyard "$WORK/halyard.log"

HY_NAME=halyard
[ $SELF_TEST -eq 1 ] && HY_NAME="redis(as halyard)"

# The durable peer: halyard acknowledges a write only once it is fsync'd, so besides Redis
# without persistence (the issue's baseline) we measure Redis with appendfsync always.
AOF_PORT=$(free_port)
while [ "$AOF_PORT" = "$REDIS_PORT" ] || [ "$AOF_PORT" = "$HY_PORT" ]; do AOF_PORT=$(free_port); done
mkdir -p "$WORK/redis-aof"
"$REDIS_BIN" --port "$AOF_PORT" --bind 127.0.0.1 --save "" --appendonly yes \
    --appendfsync always --dir "$WORK/redis-aof" >"$WORK/redis-aof.log" 2>&1 &
AOF_PID=$!
wait_ready "$AOF_PORT" "$AOF_PID" redis-server "$WORK/redis-aof.log"

# The replicated pair: Redis with appendfsync everysec, halyard with durability replicated.
ES_PORT=""
HR_PORT=""
if [ "$REPLICATED" = "1" ]; then
    ES_PORT=$(free_port)
    while [ "$ES_PORT" = "$REDIS_PORT" ] || [ "$ES_PORT" = "$HY_PORT" ] || [ "$ES_PORT" = "$AOF_PORT" ]; do
        ES_PORT=$(free_port)
    done
    mkdir -p "$WORK/redis-everysec" "$WORK/halyard-r"
    "$REDIS_BIN" --port "$ES_PORT" --bind 127.0.0.1 --save "" --appendonly yes \
        --appendfsync everysec --dir "$WORK/redis-everysec" >"$WORK/redis-everysec.log" 2>&1 &
    ES_PID=$!
    wait_ready "$ES_PORT" "$ES_PID" "redis-server (everysec)" "$WORK/redis-everysec.log"
    HR_PORT=$(free_port)
    while [ "$HR_PORT" = "$REDIS_PORT" ] || [ "$HR_PORT" = "$HY_PORT" ] || [ "$HR_PORT" = "$AOF_PORT" ] ||
        [ "$HR_PORT" = "$ES_PORT" ]; do
        HR_PORT=$(free_port)
    done
    if [ $SELF_TEST -eq 1 ]; then
        start_redis_like "$HR_PORT" "$WORK/halyard-r.log" "$WORK/halyard-r"
    else
        "$HALYARD_BIN" --bind 127.0.0.1 --port "$HR_PORT" --data-dir "$WORK/halyard-r/data" \
            --durability replicated --log-level warn >"$WORK/halyard-r.log" 2>&1 &
    fi
    HR_PID=$!
    wait_ready "$HR_PORT" "$HR_PID" "halyard (replicated)" "$WORK/halyard-r.log"
fi

cpu=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//')
echo "halyard bench — $(date -u '+%Y-%m-%d %H:%M UTC') — $(nproc) CPU(s): ${cpu:-unknown} — $(uname -sr)"
echo "redis-server $("$REDIS_BIN" --version | sed -n 's/.*v=\([^ ]*\).*/\1/p') on port $REDIS_PORT (pid $REDIS_PID);" \
     "$HY_NAME on port $HY_PORT (pid $HY_PID)"
echo "redis-benchmark -t set,get -c $CLIENTS -r $RANGE, -n $N at -P 1 and -n $N_PIPE at -P 16," \
     "$ROUNDS rounds (server order alternates), medians"
echo

# ---- memory per key: first, on fresh processes, so the RSS deltas mean something ----------
LOAD="$WORK/load.resp"
awk -v n="$KEYS" 'BEGIN {
    for (i = 0; i < n; i++) {
        k = "key:" i
        printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$3\r\nxxx\r\n", length(k), k
    }
}' >"$LOAD"

info_field() { # info_field PORT FIELD
    redis-cli -h 127.0.0.1 -p "$1" INFO memory | tr -d '\r' | sed -n "s/^$2://p"
}
rss_bytes() { # rss_bytes PID
    awk '/^VmRSS:/ { print $2 * 1024 }' "/proc/$1/status"
}

measure_memory() { # measure_memory NAME PORT PID -> prints "name used_before used_after rss_before rss_after"
    local name=$1 port=$2 pid=$3 before after rb ra n
    [ "$(redis-cli -h 127.0.0.1 -p "$port" FLUSHALL)" = "OK" ] || die "FLUSHALL failed on $name"
    before=$(info_field "$port" used_memory)
    rb=$(rss_bytes "$pid")
    redis-cli -h 127.0.0.1 -p "$port" --pipe <"$LOAD" >"$WORK/pipe-$name.out" 2>&1 ||
        { cat "$WORK/pipe-$name.out" >&2; die "redis-cli --pipe failed against $name"; }
    n=$(redis-cli -h 127.0.0.1 -p "$port" DBSIZE)
    [ "$n" = "$KEYS" ] || die "$name holds $n keys after loading $KEYS"
    after=$(info_field "$port" used_memory)
    ra=$(rss_bytes "$pid")
    echo "$name $before $after $rb $ra"
}

MEM="$WORK/mem.txt"
if [ "${BENCH_MEMORY:-1}" = "0" ]; then
    echo "memory: skipped (BENCH_MEMORY=0)"
else
{
    measure_memory redis "$REDIS_PORT" "$REDIS_PID"
    measure_memory halyard "$HY_PORT" "$HY_PID"
} >"$MEM"

"$PY" - "$MEM" "$KEYS" "$HY_NAME" <<'EOF'
import sys
rows = {l.split()[0]: [int(x) for x in l.split()[1:]] for l in open(sys.argv[1]) if l.strip()}
keys = int(sys.argv[2])
r, h = rows["redis"], rows["halyard"]
ru, hu = (r[1] - r[0]) / keys, (h[1] - h[0]) / keys
rr, hr = (r[3] - r[2]) / keys, (h[3] - h[2]) / keys
print("memory for %d keys (SET key:N xxx), bytes per key:" % keys)
print("%-22s %14s %14s %16s" % ("measure", "redis", sys.argv[3], "ratio hy/redis"))
print("%-22s %14.1f %14.1f %16.2f" % ("used_memory delta", ru, hu, hu / ru if ru else float("nan")))
print("%-22s %14.1f %14.1f %16.2f" % ("process RSS delta", rr, hr, hr / rr if rr else float("nan")))
EOF
fi
echo
for port in "$REDIS_PORT" "$HY_PORT"; do
    [ "$(redis-cli -h 127.0.0.1 -p "$port" FLUSHALL)" = "OK" ] || die "FLUSHALL failed on port $port"
done

# ---- throughput -----------------------------------------------------------------------------
RESULTS="$WORK/results.txt" # lines: server pipeline test rps cpu_us_per_request
: >"$RESULTS"

# cpu_ticks PID: work the server does for its writes, its children's included
. "$(dirname "${BASH_SOURCE[0]}")/cpu.sh"

run_bench() { # run_bench NAME PORT PIPELINE REQUESTS PID [TESTS]
    local name=$1 port=$2 pipe=$3 n=$4 pid=$5 tests=${6:-set get} out test c0 c1
    # One test per run, so that the server's CPU time (from /proc, every thread) is that
    # test's: CPU per request moves far less with the machine's noise than throughput.
    for test in $tests; do
        c0=$(cpu_ticks "$pid")
        if ! out=$(redis-benchmark -h 127.0.0.1 -p "$port" -t "$test" -c $CLIENTS -r $RANGE \
                       -n "$n" -P "$pipe" -q --csv 2>"$WORK/bench.err"); then
            echo "bench: redis-benchmark against $name failed:" >&2
            cat "$WORK/bench.err" >&2
            exit 1
        fi
        c1=$(cpu_ticks "$pid")
        # CSV: "test","rps",... with a header line; keep the SET or GET row.
        echo "$out" | awk -F'","' -v s="$name" -v p="$pipe" -v n="$n" -v d="$((c1 - c0))" \
            -v hz="$(getconf CLK_TCK)" '
            { gsub(/"/, "", $1); gsub(/"/, "", $2) }
            $1 == "SET" || $1 == "GET" { printf "%s %s %s %s %.3f\n", s, p, $1, $2, d / hz * 1e6 / n }' \
            >>"$RESULTS"
    done
}

for round in $(seq "$ROUNDS"); do
    if [ $((round % 2)) -eq 1 ]; then order="redis aof halyard"; else order="halyard aof redis"; fi
    if [ "$REPLICATED" = "1" ]; then
        if [ $((round % 2)) -eq 1 ]; then order="$order everysec halyard-r"; else order="$order halyard-r everysec"; fi
    fi
    for pipe in 1 16; do
        n=$N
        [ "$pipe" -gt 1 ] && n=$N_PIPE
        for who in $order; do
            case $who in
            redis) run_bench redis "$REDIS_PORT" "$pipe" "$n" "$REDIS_PID" ;;
            aof) run_bench aof "$AOF_PORT" "$pipe" "$n" "$AOF_PID" ;;
            everysec) run_bench everysec "$ES_PORT" "$pipe" "$n" "$ES_PID" set ;;
            halyard-r) run_bench halyard-r "$HR_PORT" "$pipe" "$n" "$HR_PID" set ;;
            *) run_bench halyard "$HY_PORT" "$pipe" "$n" "$HY_PID" ;;
            esac
            for pid in "$REDIS_PID" "$HY_PID" "$AOF_PID" $ES_PID $HR_PID; do
                kill -0 "$pid" 2>/dev/null || die "a server (pid $pid) died during the benchmark"
            done
        done
    done
    echo "round $round/$ROUNDS done ($order)" >&2
done

"$PY" - "$RESULTS" "$HY_NAME" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
data, cpu = {}, {}
for server, pipe, test, rps, us in rows:
    data.setdefault((test, int(pipe), server), []).append(float(rps))
    cpu.setdefault((test, int(pipe), server), []).append(float(us))
print("%-5s %8s %12s %14s %14s %15s %16s" % ("test", "pipeline", "redis rps", "redis-aof rps",
      sys.argv[2] + " rps", "ratio hy/redis", "ratio hy/aof"))
for test in ("SET", "GET"):
    for pipe in (1, 16):
        r = data.get((test, pipe, "redis"), [])
        a = data.get((test, pipe, "aof"), [])
        h = data.get((test, pipe, "halyard"), [])
        if not r or not h or not a:
            print("%-5s %8d %12s %14s %14s %15s %16s" % (test, pipe, "n/a", "n/a", "n/a", "n/a", "n/a"))
            continue
        rm, am, hm = statistics.median(r), statistics.median(a), statistics.median(h)
        print("%-5s %8d %12.0f %14.0f %14.0f %15.2f %16.2f" % (test, pipe, rm, am, hm, hm / rm, hm / am))
print()
print("server CPU time per request (user + sys, every thread and reaped children, from /proc), microseconds, medians:")
print("%-5s %8s %12s %14s %14s %15s %16s" % ("test", "pipeline", "redis", "redis-aof",
      sys.argv[2], "ratio hy/redis", "ratio hy/aof"))
for test in ("SET", "GET"):
    for pipe in (1, 16):
        r, a, h = (cpu.get((test, pipe, s), []) for s in ("redis", "aof", "halyard"))
        if not r or not h or not a:
            continue
        rm, am, hm = statistics.median(r), statistics.median(a), statistics.median(h)
        print("%-5s %8d %12.2f %14.2f %14.2f %15.2f %16.2f" % (test, pipe, rm, am, hm,
              hm / rm if rm else float("nan"), hm / am if am else float("nan")))
print("redis-aof = redis-server --appendonly yes --appendfsync always (durable like halyard)")
print("issue 17 targets: rps ratio hy/aof >= 1.0 (SET and GET, -P 1 and -P 16); SET CPU ratio hy/aof <= 1.0")
e, h = data.get(("SET", 1, "everysec")), data.get(("SET", 1, "halyard-r"))
if e and h:
    print()
    print("durability: replicated (issue 17 item 3): SET, medians")
    print("%-5s %8s %14s %14s %9s %16s %16s %9s" % ("test", "pipeline", "everysec rps", "halyard-r rps",
          "ratio", "everysec CPU us", "halyard-r CPU us", "ratio"))
    for pipe in (1, 16):
        e, h = data.get(("SET", pipe, "everysec"), []), data.get(("SET", pipe, "halyard-r"), [])
        ec, hc = cpu.get(("SET", pipe, "everysec"), []), cpu.get(("SET", pipe, "halyard-r"), [])
        if not e or not h:
            continue
        em, hm, ecm, hcm = (statistics.median(x) for x in (e, h, ec, hc))
        print("%-5s %8d %14.0f %14.0f %9.2f %16.2f %16.2f %9.2f" % ("SET", pipe, em, hm, hm / em, ecm, hcm,
              hcm / ecm if ecm else float("nan")))
    print("everysec = redis-server --appendonly yes --appendfsync everysec; halyard-r = halyard --durability replicated")
    print("issue 17 target (3 nodes, make bench-cluster): rps ratio >= 1.0 at -P 1 and -P 16")
EOF
echo
