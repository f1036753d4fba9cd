#!/usr/bin/env bash
# The data types side by side (issue 13's benchmark; part of `make bench`, alone as
# `make bench-types`): halyard (default settings: every write fdatasync'd before its reply)
# and Debian's redis-server (no persistence, the issue's baseline), the same redis-benchmark
# runs against each, the order of the two servers alternating per round:
#   SET (the reference), LPUSH, LPOP (of the list LPUSH just filled), SADD, ZADD, HSET
#   (redis-benchmark's own tests), XADD, ZRANGE of a 100-member sorted set (0 99, loaded first) and
#   EVALSHA of a small script that writes (INCR of its key), as redis-benchmark commands;
# -c 50 -r 100000, at -P 1 (BENCH_TYPES_N requests, default 20000) and -P 16
# (BENCH_TYPES_N_PIPE, default 100000), BENCH_TYPES_ROUNDS rounds (default 3), medians;
# BENCH_TYPES_ONLY limits the rows (e.g. "set evalsha").
# Prints throughput and the server's CPU time per request (from /proc), the halyard/redis
# ratio of each, and the issue's target: each command's throughput ratio at least 0.9x
# halyard's own SET ratio of the same pipeline depth ("met" / "MISSED"). Both servers are
# stopped by PID on exit. Nothing here is a pass/fail test.
#
#   bench/types.sh /abs/path/to/halyard
set -euo pipefail

N=${BENCH_TYPES_N:-20000}
N_PIPE=${BENCH_TYPES_N_PIPE:-100000}
ROUNDS=${BENCH_TYPES_ROUNDS:-3}
# BENCH_TYPES_ONLY="set evalsha": only these rows (names as printed; set is the reference)
ONLY=${BENCH_TYPES_ONLY:-}
CLIENTS=50
RANGE=100000
PY=/usr/bin/python3
SCRIPT="return redis.call('INCR', KEYS[1])"

die() { echo "bench-types: $*" >&2; exit 1; }
[ $# -eq 1 ] || die "usage: bench/types.sh /abs/path/to/halyard"
HALYARD_BIN=$1
[ -x "$HALYARD_BIN" ] || die "$HALYARD_BIN is not an executable"
REDIS_BIN=$(command -v redis-server) || die "redis-server not found (scripts/deps.sh installs it)"
command -v redis-benchmark >/dev/null || die "redis-benchmark not found (package redis-tools)"

WORK=$(mktemp -d /tmp/halyard-types.XXXXXX)
REDIS_PID=""
HY_PID=""
. "$(dirname "${BASH_SOURCE[0]}")/procs.sh" # stop_pid
cleanup() {
    stop_pid "$HY_PID"
    stop_pid "$REDIS_PID"
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

. "$(dirname "${BASH_SOURCE[0]}")/cpu.sh"

free_port() {
    "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
wait_ready() { # wait_ready PORT PID NAME
    local i
    for i in $(seq 300); do
        kill -0 "$2" 2>/dev/null || die "$3 exited during start-up"
        [ "$(redis-cli -p "$1" PING 2>/dev/null)" = "PONG" ] && return 0
        sleep 0.05
    done
    die "$3 did not answer PING on port $1 within 15 s"
}

REDIS_PORT=$(free_port)
mkdir -p "$WORK/redis"
"$REDIS_BIN" --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK/redis" \
    >"$WORK/redis.log" 2>&1 &
REDIS_PID=$!
wait_ready "$REDIS_PORT" "$REDIS_PID" redis-server
HY_PORT=$(free_port)
while [ "$HY_PORT" = "$REDIS_PORT" ]; do HY_PORT=$(free_port); done
"$HALYARD_BIN" --bind 127.0.0.1 --port "$HY_PORT" --http-port 0 --data-dir "$WORK/halyard" \
    --log-level warn >"$WORK/halyard.log" 2>&1 &
HY_PID=$!
wait_ready "$HY_PORT" "$HY_PID" halyard

# The 100-member sorted set ZRANGE reads, and the script EVALSHA runs, on both servers.
ZARGS=()
for i in $(seq 0 99); do ZARGS+=("$i" "member:$i"); done
SHA=""
for port in "$REDIS_PORT" "$HY_PORT"; do
    redis-cli -p "$port" ZADD bench:z100 "${ZARGS[@]}" >/dev/null
    [ "$(redis-cli -p "$port" ZCARD bench:z100)" = "100" ] || die "ZADD of 100 members failed on $port"
    sha=$(redis-cli -p "$port" SCRIPT LOAD "$SCRIPT")
    [ -z "$SHA" ] || [ "$sha" = "$SHA" ] || die "SCRIPT LOAD answered $sha on $port, $SHA elsewhere"
    SHA=$sha
done

echo "halyard bench-types — $(date -u '+%Y-%m-%d %H:%M UTC') — $(nproc) CPU(s) — load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "redis-server (no persistence) on $REDIS_PORT, halyard (fsync) on $HY_PORT; redis-benchmark -c $CLIENTS -r $RANGE," \
     "-n $N at -P 1, -n $N_PIPE at -P 16, $ROUNDS rounds, medians"

RESULTS="$WORK/results.txt" # lines: server pipeline name rps cpu_us_per_request
: >"$RESULTS"
one() { # one NAME PORT PID PIPE N LABEL ARGS...: one redis-benchmark run, its rps and CPU
    local name=$1 port=$2 pid=$3 pipe=$4 n=$5 label=$6 out c0 c1
    shift 6
    c0=$(cpu_ticks "$pid")
    out=$(redis-benchmark -h 127.0.0.1 -p "$port" -c $CLIENTS -r $RANGE -n "$n" -P "$pipe" -q --csv "$@" \
        2>"$WORK/err") || { cat "$WORK/err" >&2; die "redis-benchmark failed against $name ($label)"; }
    c1=$(cpu_ticks "$pid")
    # CSV: a header, then one row "test","rps",...
    echo "$out" | awk -F'","' -v s="$name" -v p="$pipe" -v l="$label" -v n="$n" -v d="$((c1 - c0))" \
        -v hz="$(getconf CLK_TCK)" 'NR > 1 { gsub(/"/, "", $2); printf "%s %s %s %s %.3f\n", s, p, l, $2, d / hz * 1e6 / n; exit }' \
        >>"$RESULTS"
    grep -q "^$name $pipe $label " "$RESULTS" || die "redis-benchmark printed no figure for $label"
}
wanted() { [ -z "$ONLY" ] || [[ " $ONLY " == *" $1 "* ]]; }
run_all() { # run_all NAME PORT PID PIPE N
    local t
    for t in set lpush lpop sadd zadd hset; do
        wanted "$t" && one "$@" "$t" -t "$t"
    done
    wanted xadd && one "$@" xadd XADD "bench:s:__rand_int__" "*" field value # (no -t xadd in 7.0)
    wanted zrange100 && one "$@" zrange100 ZRANGE bench:z100 0 99
    wanted evalsha && one "$@" evalsha EVALSHA "$SHA" 1 "bench:counter:__rand_int__"
    return 0
}

for round in $(seq "$ROUNDS"); do
    for pipe in 1 16; do
        n=$N
        [ "$pipe" -gt 1 ] && n=$N_PIPE
        if [ $((round % 2)) -eq 1 ]; then order="redis halyard"; else order="halyard redis"; fi
        for who in $order; do
            if [ "$who" = redis ]; then
                run_all redis "$REDIS_PORT" "$REDIS_PID" "$pipe" "$n"
            else
                run_all halyard "$HY_PORT" "$HY_PID" "$pipe" "$n"
            fi
            kill -0 "$HY_PID" 2>/dev/null && kill -0 "$REDIS_PID" 2>/dev/null || die "a server died"
        done
    done
    echo "round $round/$ROUNDS done" >&2
done

"$PY" - "$RESULTS" <<'EOF'
import statistics, sys
rps, cpu = {}, {}
for line in open(sys.argv[1]):
    server, pipe, name, r, us = line.split()
    rps.setdefault((name, int(pipe), server), []).append(float(r))
    cpu.setdefault((name, int(pipe), server), []).append(float(us))
names = ["set", "lpush", "lpop", "sadd", "zadd", "hset", "xadd", "zrange100", "evalsha"]
print("%-10s %4s %12s %12s %7s %10s %10s %7s %12s" % ("command", "-P", "redis rps", "halyard rps", "ratio",
      "redis us", "halyard us", "ratio", "target"))
for pipe in (1, 16):
    ref = None
    for name in names:
        r, h = rps.get((name, pipe, "redis")), rps.get((name, pipe, "halyard"))
        if not r or not h:
            continue
        rm, hm = statistics.median(r), statistics.median(h)
        rc, hc = statistics.median(cpu[(name, pipe, "redis")]), statistics.median(cpu[(name, pipe, "halyard")])
        ratio = hm / rm
        if name == "set":
            ref, verdict = ratio, "(reference)"
        else:
            verdict = "met" if ratio >= 0.9 * ref else "MISSED"
            verdict += " %.2fx" % (ratio / ref)
        print("%-10s %4d %12.0f %12.0f %7.2f %10.2f %10.2f %7.2f %12s" % (name, pipe, rm, hm, ratio, rc, hc,
              hc / rc if rc else float("nan"), verdict))
print("target (issue 13): each command's ratio >= 0.9x halyard's own SET ratio at the same -P;"
      " 'us' = server CPU per request (user + sys, /proc)")
EOF
