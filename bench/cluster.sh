#!/usr/bin/env bash
# `make bench-cluster`: a replicated halyard against durable Redis and etcd, side by side in the
# same run (issue 5 "Benchmarks", docs/architecture.md "Testing"). Nothing here is a pass/fail test.
#
#   bench/cluster.sh /abs/path/to/halyard
#
# (a) Throughput: a 3-node halyard cluster (every write a Raft entry fsync'd by a majority before
#     the reply) against one Debian redis-server with appendonly yes, appendfsync always.
#     redis-benchmark -t set -c 50 -r 100000 at -P 1 and -P 16, sent to halyard's leader.
#     Beside them, the `durability: replicated` pair (issue 17 item 3): a second 3-node halyard
#     cluster started with --durability replicated (a write acknowledged once a majority wrote
#     it, each node fdatasyncing within fsync-interval-ms) against a second redis-server with
#     appendfsync everysec, measured in the same rounds. Every run also reads the server side's
#     CPU time (user + sys from /proc/PID/stat, every thread and reaped child): per SET, the
#     leader's and the three nodes' together for halyard, the one process's for Redis.
#     BENCH_REPLICATED=0 leaves the pair out.
# (b) Latency: the same, one client (-c 1 -P 1): p50 and p99 from redis-benchmark --csv.
#     (a) and (b) run ROUNDS rounds, the order of the two servers alternating per round;
#     the summary shows medians and halyard/redis ratios. Both servers get the same
#     treatment: each measurement runs once per round on each (no retries), a run that
#     fails is reported as failed and left out of the medians, and every figure says how
#     many runs it comes from ("median of n/N"); with no run left it says "failed", never
#     prints a nan or a ratio of nothing.
# (c) Failover: bench/failover.py, kill -9 of the leader of a fresh 3-node cluster, time to the
#     first acknowledged write through a survivor, FAILOVER_ROUNDS rounds, p50 and p99; then
#     bench/failover_clients.py, FAILOVER_ROUNDS/2 rounds (at least 10): for clients of the
#     followers and of the leader, each client's longest gap between acknowledged writes
#     around the kill, p50 and p99, and how many writes were answered -UNKNOWN.
# (d)-(f) Partitions (issue 11), bench/partitions.py, its own clusters (BENCH_PARTITIONS=0 skips
#     them), after its row (b) with partitions (one client's SET latency, 16 against 1): (d) idle cost of 1 and 1,024 partitions (CPU % of a core per node over 20 s, RSS;
#     target <= 2%); (e) SET throughput and server CPU per SET with 16 partitions (`make run`'s
#     count) against 1, at -P 1 and -P 16, through redis-benchmark --cluster and through one
#     node (target >= 0.9x); (f) kill -9 and SIGSTOP of a node: per partition it led, the time
#     until a write of that partition through a survivor is acknowledged, p50/p99 over 10
#     rounds with 1 and with 16 partitions (target p99 <= 1 s). See that script's header.
# (g) etcd, when its `etcd` binary is installed (Debian package etcd-server; BENCH_ETCD=1 installs
#     it first if missing, BENCH_ETCD=0 skips this part): bench/etcd_bench.py measures put
#     throughput of halyard and a 3-member etcd with the same Python tool, and etcd's failover
#     timed exactly like (c).
#
# Environment: BENCH_FAILOVER=0 skips (c); BENCH_HALYARD_ARGS adds flags to every node of (a)/(b)
# (e.g. "--election-timeout-ms 1000" where a loaded machine starves followers into elections); BENCH_N (requests per run at -P 1, default 200000), BENCH_N_PIPE (at -P 16,
# default 1000000), BENCH_LAT_N (requests per -c 1 run, default 20000), BENCH_ROUNDS (default
# 3), BENCH_FAILOVER_ROUNDS (default 20), BENCH_PARTITIONS (see above), BENCH_PART_FAILOVER_ROUNDS
# (rounds of (f) per signal and partition count, default 10), BENCH_ETCD (see above),
# BENCH_ETCD_THREADS (default 16), BENCH_ETCD_SECONDS (default 5). (e) runs BENCH_ROUNDS rounds
# of -n 100000 at -P 1 and -n 400000 at -P 16 (bench/partitions.py; an exported BENCH_N or
# BENCH_N_PIPE sets those as well).
# Everything listens on 127.0.0.1 and is stopped by PID on exit (trap); all data lives in one
# mktemp directory, removed on exit. Every step has a time bound.
set -euo pipefail

N=${BENCH_N:-200000}
N_PIPE=${BENCH_N_PIPE:-1000000}
LAT_N=${BENCH_LAT_N:-20000}
ROUNDS=${BENCH_ROUNDS:-3}
FAILOVER_ROUNDS=${BENCH_FAILOVER_ROUNDS:-20}
ETCD_THREADS=${BENCH_ETCD_THREADS:-16}
ETCD_SECONDS=${BENCH_ETCD_SECONDS:-5}
CLIENTS=50
RANGE=100000
PY=/usr/bin/python3
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")

die() { echo "bench-cluster: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: bench/cluster.sh /abs/path/to/halyard"
HALYARD_BIN=$1
[ -x "$HALYARD_BIN" ] || die "$HALYARD_BIN is not an executable"
REDIS_BIN=$(command -v redis-server) || die "redis-server not found (scripts/deps.sh installs it)"
command -v redis-benchmark >/dev/null || die "redis-benchmark not found (package redis-tools)"
command -v redis-cli >/dev/null || die "redis-cli not found (package redis-tools)"

WORK=$(mktemp -d /tmp/halyard-bench-cluster.XXXXXX)
export TMPDIR=$WORK # the Python parts keep their clusters' data here too
HY_PIDS=()
REDIS_PID=""
EVERYSEC_PID=""
REPLICATED=${BENCH_REPLICATED:-1}
CHILD_PID=""

. "$(dirname "${BASH_SOURCE[0]}")/procs.sh" # stop_pid

stop_servers() {
    local pid
    for pid in "${HY_PIDS[@]}"; do stop_pid "$pid" halyard; done
    HY_PIDS=()
    stop_pid "$REDIS_PID" redis-server
    stop_pid "$EVERYSEC_PID" redis-server
    REDIS_PID=""
    EVERYSEC_PID=""
}

cleanup() {
    stop_pid "$CHILD_PID" "$(basename "${CHILD_NAME:-child}")"
    stop_servers
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

run_child() { # run_child SECONDS CMD...: in the background, so the trap can stop it by PID
    local limit=$1 rc=0
    shift
    CHILD_NAME=$2
    timeout "$limit" "$@" &
    CHILD_PID=$!
    wait "$CHILD_PID" || rc=$?
    CHILD_PID=""
    return $rc
}

wait_ready() { # wait_ready PORT PID NAME LOG: poll PING until PONG, for at most 15 s
    local port=$1 pid=$2 name=$3 log=$4 i
    for i in $(seq 300); do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "bench-cluster: $name exited during start-up; its log:" >&2
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

# Six client ports P whose peer ports P + 10000 are free as well (tests/integration/cluster.py
# picks them below the ephemeral range), all twelve distinct (two clusters), and two ports for
# redis-server.
read -r -a PORTS <<<"$("$PY" - "$ROOT/tests/integration" <<'EOF'
import socket, sys
sys.path.insert(0, sys.argv[1])
from cluster import free_port_pair
taken = set()
while len(taken) < 12:
    p = free_port_pair()
    if not {p, p + 10000} & taken:
        taken |= {p, p + 10000}
        print(p, end=" ")
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
)"
[ ${#PORTS[@]} -eq 8 ] || die "could not pick ports"
HY_PORTS=("${PORTS[@]:0:3}")
HR_PORTS=("${PORTS[@]:3:3}") # the replicated cluster's
REDIS_PORT=${PORTS[6]}
EVERYSEC_PORT=${PORTS[7]}

start_cluster() { # start_cluster PREFIX DURABILITY PORT PORT PORT: nodes PREFIX1..3 in WORK
    local prefix=$1 durability=$2 secret boot i port dir first=${#HY_PIDS[@]}
    shift 2
    local ports=("$@")
    secret=$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')
    boot="n1@127.0.0.1:$((ports[0] + 10000)),n2@127.0.0.1:$((ports[1] + 10000))"
    boot="$boot,n3@127.0.0.1:$((ports[2] + 10000))"
    for i in 1 2 3; do
        port=${ports[$((i - 1))]}
        dir="$WORK/$prefix$i"
        mkdir -p "$dir"
        # shellcheck disable=SC2086 # BENCH_HALYARD_ARGS is a list of flags
        (cd "$dir" && exec "$HALYARD_BIN" --node-id "n$i" --bind 127.0.0.1 --port "$port" \
            --peer-port $((port + 10000)) --data-dir "$dir/data" --bootstrap "$boot" \
            --cluster-secret "$secret" --durability "$durability" --log-level warn \
            ${BENCH_HALYARD_ARGS:-} >"$dir/log" 2>&1) &
        HY_PIDS+=($!)
    done
    for i in 0 1 2; do
        wait_ready "${ports[$i]}" "${HY_PIDS[$((first + i))]}" "halyard $prefix$((i + 1))" \
            "$WORK/$prefix$((i + 1))/log"
    done
}

is_leader() { # is_leader PORT
    redis-cli -h 127.0.0.1 -p "$1" INFO replication 2>/dev/null | tr -d '\r' | grep -qx 'raft_role:leader'
}

raft_term() { # raft_term PORT
    redis-cli -h 127.0.0.1 -p "$1" INFO replication 2>/dev/null | tr -d '\r' | sed -n 's/^raft_term://p'
}

find_leader() { # find_leader [PORTS...]: the client port of the node that says it leads (15 s)
    local i p
    local ports=("$@")
    [ ${#ports[@]} -gt 0 ] || ports=("${HY_PORTS[@]}")
    for i in $(seq 300); do
        for p in "${ports[@]}"; do
            if is_leader "$p"; then echo "$p"; return 0; fi
        done
        sleep 0.05
    done
    die "no halyard leader within 15 s"
}

check_alive() {
    local pid
    for pid in "${HY_PIDS[@]}" "$REDIS_PID" ${EVERYSEC_PID:+"$EVERYSEC_PID"}; do
        kill -0 "$pid" 2>/dev/null || die "a server (pid $pid) died during the benchmark"
    done
}

# ---- (a) and (b): redis-benchmark ------------------------------------------------------------
mkdir -p "$WORK/redis"
"$REDIS_BIN" --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly yes \
    --appendfsync always --dir "$WORK/redis" >"$WORK/redis.log" 2>&1 &
REDIS_PID=$!
wait_ready "$REDIS_PORT" "$REDIS_PID" redis-server "$WORK/redis.log"
start_cluster n fsync "${HY_PORTS[@]}"
LEADER=$(find_leader "${HY_PORTS[@]}")
if [ "$REPLICATED" = "1" ]; then
    mkdir -p "$WORK/everysec"
    "$REDIS_BIN" --port "$EVERYSEC_PORT" --bind 127.0.0.1 --save "" --appendonly yes \
        --appendfsync everysec --dir "$WORK/everysec" >"$WORK/everysec.log" 2>&1 &
    EVERYSEC_PID=$!
    wait_ready "$EVERYSEC_PORT" "$EVERYSEC_PID" "redis-server (everysec)" "$WORK/everysec.log"
    start_cluster r replicated "${HR_PORTS[@]}"
    LEADER_R=$(find_leader "${HR_PORTS[@]}")
fi

cpu=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//')
echo "halyard bench-cluster — $(date -u '+%Y-%m-%d %H:%M UTC') — $(nproc) CPU(s): ${cpu:-unknown} — $(uname -sr)"
echo "halyard: 3 nodes on ports ${HY_PORTS[*]} (pids ${HY_PIDS[*]}), leader on $LEADER" \
     "(term $(raft_term "$LEADER"));" \
     "redis-server $("$REDIS_BIN" --version | sed -n 's/.*v=\([^ ]*\).*/\1/p') appendfsync always" \
     "on port $REDIS_PORT (pid $REDIS_PID)"
if [ "$REPLICATED" = "1" ]; then
    echo "halyard-r: 3 nodes --durability replicated on ports ${HR_PORTS[*]}, leader on $LEADER_R;" \
         "redis-server appendfsync everysec on port $EVERYSEC_PORT (pid $EVERYSEC_PID)"
fi
echo "(a) redis-benchmark -t set -c $CLIENTS -r $RANGE, -n $N at -P 1 and -n $N_PIPE at -P 16;" \
     "(b) -c 1 -P 1 -n $LAT_N; $ROUNDS rounds, server order alternating"
echo

# lines: server clients pipeline rps p50_ms p99_ms cpu_us_per_set(leader or redis)
# cpu_us_per_set(every node), or ... FAILED
RESULTS="$WORK/results.txt"
: >"$RESULTS"
ERRORS=0
LEADER_CHANGES=0
FAILOVER_RC=0
ETCD_RC=0

# cpu_ticks PID...
. "$(dirname "${BASH_SOURCE[0]}")/cpu.sh"

pid_of_port() { # pid_of_port PORT: the PID of the server on that port (halyard or redis)
    local i
    [ "$1" = "$REDIS_PORT" ] && { echo "$REDIS_PID"; return; }
    [ "$1" = "$EVERYSEC_PORT" ] && { echo "$EVERYSEC_PID"; return; }
    for i in 0 1 2; do
        [ "$1" = "${HY_PORTS[$i]}" ] && { echo "${HY_PIDS[$i]}"; return; }
        [ "$1" = "${HR_PORTS[$i]:-}" ] && { echo "${HY_PIDS[$((3 + i))]}"; return; }
    done
}

group_pids() { # group_pids PORT: the PIDs of every server of the side on that port
    local i
    for i in 0 1 2; do
        [ "$1" = "${HY_PORTS[$i]}" ] && { echo "${HY_PIDS[*]:0:3}"; return; }
        [ "$1" = "${HR_PORTS[$i]:-}" ] && { echo "${HY_PIDS[*]:3:3}"; return; }
    done
    pid_of_port "$1"
}

run_bench() { # run_bench NAME PORT CLIENTS PIPELINE REQUESTS; returns 1 if redis-benchmark failed
    local name=$1 port=$2 clients=$3 pipe=$4 n=$5 out row rc=0 c0 a0 c1 a1 own all
    own=$(pid_of_port "$port")
    all=$(group_pids "$port")
    c0=$(cpu_ticks "$own")
    # shellcheck disable=SC2086 # $all is a list of PIDs
    a0=$(cpu_ticks $all)
    out=$(timeout 300 redis-benchmark -h 127.0.0.1 -p "$port" -t set -c "$clients" -r $RANGE \
              -n "$n" -P "$pipe" -q --csv 2>"$WORK/bench.err") || rc=$?
    if [ $rc -ne 0 ]; then
        echo "bench-cluster: redis-benchmark against $name -c $clients -P $pipe FAILED" \
             "(exit $rc$([ $rc -eq 124 ] && echo ": out of time")); reported as failed:" >&2
        { head -5 "$WORK/bench.err"; echo "$out" | tail -3; } | grep -v '^$' >&2 || true
        echo "$name $clients $pipe FAILED" >>"$RESULTS"
        echo "  $(printf '%-7s' "$name") -c $(printf '%-2s' "$clients") -P $(printf '%-2s' "$pipe") FAILED"
        return 1
    fi
    if [ -s "$WORK/bench.err" ]; then
        ERRORS=$((ERRORS + 1))
        echo "bench-cluster: redis-benchmark against $name -c $clients -P $pipe reported:" >&2
        sort "$WORK/bench.err" | uniq -c | sort -rn | head -5 >&2
    fi
    c1=$(cpu_ticks "$own")
    # shellcheck disable=SC2086
    a1=$(cpu_ticks $all)
    # CSV: "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms",
    # "p99_latency_ms","max_latency_ms" with a header line.
    row=$(echo "$out" | awk -F, -v s="$name" -v c="$clients" -v p="$pipe" -v n="$n" \
        -v d="$((c1 - c0))" -v da="$((a1 - a0))" -v hz="$(getconf CLK_TCK)" '
        { gsub(/"/, "") }
        $1 == "SET" { printf "%s %s %s %s %s %s %.3f %.3f\n", s, c, p, $2, $5, $7,
                             d / hz * 1e6 / n, da / hz * 1e6 / n }')
    if [ -z "$row" ]; then
        echo "bench-cluster: no SET result from redis-benchmark against $name: $out; reported as failed" >&2
        echo "$name $clients $pipe FAILED" >>"$RESULTS"
        return 1
    fi
    echo "$row" >>"$RESULTS"
    echo "$row" | awk '{ printf "  %-9s -c %-2s -P %-2s %9.0f SET/s  p50 %6.0f us  p99 %6.0f us  CPU %6.1f us/SET (all %6.1f)\n",
                                $1, $2, $3, $4, $5 * 1000, $6 * 1000, $7, $8 }'
}

# run_halyard CLIENTS PIPELINE REQUESTS: once, against the leader, like redis (no retries: a
# retried side would get more chances than the other). redis-benchmark gives up at the first
# error reply, and halyard answers one (TRYAGAIN, UNKNOWN outcome) to writes caught in a change
# of leadership: such a run is reported as failed. A run that completes while leadership
# changes stays in the medians, and is said so. Either way the next run goes to the leader.
run_halyard() {
    local term0 rc=0
    term0=$(raft_term "$LEADER")
    run_bench halyard "$LEADER" "$@" || rc=$?
    if ! is_leader "$LEADER" || [ "$(raft_term "$LEADER")" != "$term0" ]; then
        [ $rc -eq 0 ] && LEADER_CHANGES=$((LEADER_CHANGES + 1))
        LEADER=$(find_leader "${HY_PORTS[@]}")
        echo "bench-cluster: leadership changed during that run (term $term0 ->" \
             "$(raft_term "$LEADER")); the leader is now on port $LEADER" >&2
    fi
    return $rc
}

# The same against the replicated cluster's leader (row name halyard-r).
run_halyard_r() {
    local term0 rc=0
    term0=$(raft_term "$LEADER_R")
    run_bench halyard-r "$LEADER_R" "$@" || rc=$?
    if ! is_leader "$LEADER_R" || [ "$(raft_term "$LEADER_R")" != "$term0" ]; then
        [ $rc -eq 0 ] && LEADER_CHANGES=$((LEADER_CHANGES + 1))
        LEADER_R=$(find_leader "${HR_PORTS[@]}")
        echo "bench-cluster: leadership changed during that run (term $term0 ->" \
             "$(raft_term "$LEADER_R")); the replicated leader is now on port $LEADER_R" >&2
    fi
    return $rc
}

for round in $(seq "$ROUNDS"); do
    if [ $((round % 2)) -eq 1 ]; then order="redis halyard"; else order="halyard redis"; fi
    if [ "$REPLICATED" = "1" ]; then
        if [ $((round % 2)) -eq 1 ]; then order="$order everysec halyard-r"; else order="$order halyard-r everysec"; fi
    fi
    for step in "$CLIENTS 1 $N" "$CLIENTS 16 $N_PIPE" "1 1 $LAT_N"; do
        for who in $order; do
            # shellcheck disable=SC2086 # $step is three words on purpose
            case $who in
            redis) run_bench redis "$REDIS_PORT" $step || true ;;
            everysec) run_bench everysec "$EVERYSEC_PORT" $step || true ;;
            halyard-r) run_halyard_r $step || true ;;
            *) run_halyard $step || true ;;
            esac
            check_alive
        done
    done
    echo "round $round/$ROUNDS done ($order)"
done
for d in n1 n2 n3 r1 r2 r3; do # halyard runs at --log-level warn: anything it logged is worth seeing
    if [ -s "$WORK/$d/log" ]; then
        echo "bench-cluster: halyard $d logged $(wc -l <"$WORK/$d/log") line(s); the first:" >&2
        head -3 "$WORK/$d/log" >&2
    fi
done
stop_servers # the next parts start their own clusters

# ---- (c) failover, (d)-(f) partitions, (g) etcd --------------------------------------------------------------------
if [ "${BENCH_FAILOVER:-1}" = "0" ]; then
    FAILOVER_RC=skipped
else
    echo "(c) failover: bench/failover.py, $FAILOVER_ROUNDS rounds"
    # failover.py exits 1 when a round failed; the failed rounds are in its file and the summary.
    run_child $((60 + FAILOVER_ROUNDS * 45)) "$PY" "$HERE/failover.py" "$HALYARD_BIN" "$FAILOVER_ROUNDS" \
        --out "$WORK/failover.txt" || FAILOVER_RC=$?
    CLIENT_ROUNDS=$((FAILOVER_ROUNDS / 2 < 10 ? 10 : FAILOVER_ROUNDS / 2))
    echo "(c) failover per client: bench/failover_clients.py, $CLIENT_ROUNDS rounds"
    run_child $((60 + CLIENT_ROUNDS * 45)) "$PY" "$HERE/failover_clients.py" "$HALYARD_BIN" \
        "$CLIENT_ROUNDS" --out "$WORK/failover_clients.txt" || true
    echo
fi

PARTITIONS_NOTE=""
if [ "${BENCH_PARTITIONS:-1}" = "0" ]; then
    PARTITIONS_NOTE="BENCH_PARTITIONS=0"
else
    echo "(d)-(f) partitions: bench/partitions.py"
    # The same rounds as (a); an exported BENCH_N or BENCH_N_PIPE reaches its (e) as well.
    PART_FAILOVER_ROUNDS=${BENCH_PART_FAILOVER_ROUNDS:-10}
    PARTITIONS_RC=0
    BENCH_ROUNDS=$ROUNDS BENCH_FAILOVER_ROUNDS=$PART_FAILOVER_ROUNDS \
        run_child $((600 + ROUNDS * 400 + PART_FAILOVER_ROUNDS * 4 * 40)) \
        "$PY" "$HERE/partitions.py" "$HALYARD_BIN" --summary "$WORK/partitions.txt" || PARTITIONS_RC=$?
    [ "$PARTITIONS_RC" -eq 0 ] || PARTITIONS_NOTE="bench/partitions.py FAILED (exit $PARTITIONS_RC$(
        [ "$PARTITIONS_RC" -eq 124 ] && echo ": out of time")); see above"
    echo
fi

ETCD_NOTE=""
ETCD_BIN=$(command -v etcd || true)
if [ -z "$ETCD_BIN" ] && [ "${BENCH_ETCD:-}" = "1" ]; then
    if [ "$(id -u)" -eq 0 ]; then
        echo "(g) BENCH_ETCD=1: installing Debian's etcd-server"
        DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y --no-install-recommends \
            etcd-server >"$WORK/apt.log" 2>&1 || { tail -5 "$WORK/apt.log" >&2; die "apt-get install etcd-server failed"; }
        ETCD_BIN=$(command -v etcd || true)
    else
        ETCD_NOTE="BENCH_ETCD=1 but not root: apt-get install -y etcd-server, then run again"
    fi
fi
if [ "${BENCH_ETCD:-}" = "0" ]; then
    ETCD_NOTE="BENCH_ETCD=0"
elif [ -z "$ETCD_BIN" ]; then
    ETCD_NOTE=${ETCD_NOTE:-"no etcd binary (Debian package etcd-server; BENCH_ETCD=1 installs it)"}
else
    echo "(g) etcd $("$ETCD_BIN" --version | sed -n 's/^etcd Version: //p'): bench/etcd_bench.py," \
         "$ETCD_THREADS threads, $ETCD_SECONDS s per run"
    run_child $((120 + ROUNDS * 2 * (ETCD_SECONDS + 30) + FAILOVER_ROUNDS * 45)) \
        "$PY" "$HERE/etcd_bench.py" "$HALYARD_BIN" --etcd "$ETCD_BIN" --threads "$ETCD_THREADS" \
        --seconds "$ETCD_SECONDS" --rounds "$ROUNDS" --failover-rounds "$FAILOVER_ROUNDS" \
        --out "$WORK/etcd.txt" || ETCD_RC=$?
    [ "$ETCD_RC" -eq 0 ] || ETCD_NOTE="bench/etcd_bench.py FAILED (exit $ETCD_RC); see above"
    echo
fi

# ---- summary ---------------------------------------------------------------------------------
"$PY" - "$RESULTS" "$WORK/failover.txt" "$WORK/etcd.txt" "$ETCD_NOTE" "$ROUNDS" "$ERRORS" \
    "$LEADER_CHANGES" "$FAILOVER_RC" "$WORK/failover_clients.txt" "$WORK/partitions.txt" "$PARTITIONS_NOTE" <<'EOF'
import math, os, statistics, sys
results, failover, etcd, etcd_note, rounds, errors, leader_changes, failover_rc = sys.argv[1:9]
failover_clients, partitions, partitions_note = sys.argv[9:12]
rounds = int(rounds)
data, failed = {}, {}
for line in open(results):
    f = line.split()
    key = (f[0], int(f[1]), int(f[2]))
    if f[3] == "FAILED":
        failed[key] = failed.get(key, 0) + 1
    else:
        data.setdefault(key, []).append(tuple(float(x) for x in f[3:8]))


def med(server, clients, pipe, field):
    """(median or None, runs it comes from, runs attempted)."""
    key = (server, clients, pipe)
    rows = data.get(key, [])
    attempted = len(rows) + failed.get(key, 0)
    return (statistics.median(r[field] for r in rows) if rows else None), len(rows), attempted


def fig(v, runs, attempted, unit="", scale=1.0):
    if v is None:
        return "failed %d/%d" % (attempted - runs, attempted) if attempted else "not run"
    return "%.0f%s (%d/%d)" % (v * scale, unit, runs, attempted)


def ratio(a, b):
    return "%.2fx" % (a / b) if a is not None and b else "n/a"


def p99(values):
    s = sorted(values)
    return s[max(0, math.ceil(0.99 * len(s)) - 1)]


print("summary (medians over the runs that completed, shown as (completed/attempted); %d rounds;" % rounds)
print("         halyard = 3 nodes, every SET fsync'd by a majority;")
print("         redis = one redis-server, appendonly yes, appendfsync always)")
print("%-30s %20s %20s %8s  %s" % ("measure", "redis", "halyard", "hy/redis", "target"))
# Targets: issue 5's, then issue 17's (one durable Redis; three processes share two cores here).
for pipe, target in ((1, ">= 1.0x (issue 5), >= 0.8x (17)"), (16, ">= 0.7x (issue 5), >= 0.6x (17)")):
    r, h = med("redis", 50, pipe, 0), med("halyard", 50, pipe, 0)
    print("%-30s %20s %20s %8s  %s" % ("(a) SET/s -c 50 -P %d" % pipe, fig(*r), fig(*h), ratio(h[0], r[0]), target))
for field, name, target in ((1, "p50", "halyard <= 250 us"), (2, "p99", "")):
    r, h = med("redis", 1, 1, field), med("halyard", 1, 1, field)
    print(("%-30s %20s %20s %8s  %s" % ("(b) SET latency -c 1 %s" % name, fig(*r, unit=" us", scale=1000),
                                         fig(*h, unit=" us", scale=1000), ratio(h[0], r[0]), target)).rstrip())


def cpu_fig(v, runs, attempted):
    return "%.1f us (%d/%d)" % (v, runs, attempted) if v is not None else fig(v, runs, attempted)


def cpu_rows(hy, peer, target):
    """CPU per SET: the leader's against the peer's one process, then every node's."""
    for pipe in (1, 16):
        r, h, ha = med(peer, 50, pipe, 3), med(hy, 50, pipe, 3), med(hy, 50, pipe, 4)
        print("%-30s %20s %20s %8s  %s3 nodes: %s, %s" % (
            "(a) CPU/SET leader -P %d" % pipe, cpu_fig(*r), cpu_fig(*h), ratio(h[0], r[0]),
            target, cpu_fig(*ha), ratio(ha[0], r[0])))


cpu_rows("halyard", "redis", "leader <= 1.2x (17); ")
if ("halyard-r", 50, 1) in data or ("halyard-r", 50, 1) in failed:
    print()
    print("durability: replicated (issue 17 item 3): halyard-r = 3 nodes --durability replicated")
    print("         (acknowledged once a majority wrote it; fdatasync within fsync-interval-ms, 1000);")
    print("         everysec = one redis-server, appendonly yes, appendfsync everysec")
    print("%-30s %20s %20s %8s  %s" % ("measure", "everysec", "halyard-r", "hy/redis", "target"))
    for pipe in (1, 16):
        r, h = med("everysec", 50, pipe, 0), med("halyard-r", 50, pipe, 0)
        print("%-30s %20s %20s %8s  %s" % ("(a) SET/s -c 50 -P %d" % pipe, fig(*r), fig(*h), ratio(h[0], r[0]),
                                            ">= 1.0x"))
    for field, name in ((1, "p50"), (2, "p99")):
        r, h = med("everysec", 1, 1, field), med("halyard-r", 1, 1, field)
        print(("%-30s %20s %20s %8s" % ("(b) SET latency -c 1 %s" % name, fig(*r, unit=" us", scale=1000),
                                         fig(*h, unit=" us", scale=1000), ratio(h[0], r[0]))).rstrip())
    cpu_rows("halyard-r", "everysec", "")
lines = [l.strip() for l in open(failover)] if os.path.exists(failover) else []
ft = [float(x) for x in lines if x != "failed"]
fo_failed = sum(1 for x in lines if x == "failed")
if ft:
    print("(c) failover, kill -9 of the leader: p50 %.0f ms, p99 %.0f ms over %d of %d rounds%s" % (
        statistics.median(ft), p99(ft), len(ft), len(lines), "" if not fo_failed else " (%d FAILED)" % fo_failed))
elif failover_rc == "skipped":
    print("(c) failover: skipped (BENCH_FAILOVER=0)")
else:
    print("(c) failover: FAILED (%d rounds recorded, none completed; bench/failover.py exit %s)"
          % (len(lines), failover_rc))
if failover_rc == "skipped":
    pass
elif os.path.exists(failover_clients):
    for line in open(failover_clients):
        print("(c) " + line.strip())
else:
    print("(c) failover per client: FAILED (bench/failover_clients.py wrote no summary)")
if os.path.exists(partitions):
    for line in open(partitions):
        print(line.rstrip())
if partitions_note:
    print("(d)-(f) partitions: %s" % partitions_note)
if os.path.exists(etcd):
    e = dict((k, float(v)) for k, v in (l.split() for l in open(etcd)))
    print("%-30s %20s %20s %8s" % ("(g) vs 3-member etcd", "etcd", "halyard", "hy/etcd"))
    if "put_etcd" in e:
        print("%-30s %20s %20s %8s" % (
            "put/s, same Python tool", "%.0f (%d rounds)" % (e["put_etcd"], e["put_etcd_rounds"]),
            "%.0f (%d rounds)" % (e["put_halyard"], e["put_halyard_rounds"]),
            ratio(e["put_halyard"], e["put_etcd"])))
        print("%-30s %20d %20d" % ("failed puts (all rounds)", e["put_etcd_failed"], e["put_halyard_failed"]))
    n_etcd = int(e.get("failover_etcd_rounds", 0))
    of_etcd = n_etcd + int(e.get("failover_etcd_failed", 0))
    for k, v in (("p50", statistics.median(ft) if ft else None), ("p99", p99(ft) if ft else None)):
        ev = e.get("failover_etcd_" + k)
        print("%-30s %20s %20s %8s" % (
            "failover %s (lower is better)" % k,
            "%.0f ms (%d/%d)" % (ev, n_etcd, of_etcd) if ev is not None else "failed %d/%d" % (of_etcd - n_etcd, of_etcd),
            "%.0f ms (%d/%d)" % (v, len(ft), len(lines)) if v is not None else "failed",
            ratio(v, ev)))
    if etcd_note:
        print("(g) note: %s" % etcd_note)
else:
    print("(g) etcd skipped: %s" % etcd_note)
if int(errors):
    print("note: redis-benchmark reported errors in %s run(s); see above" % errors)
if int(leader_changes):
    print("note: halyard's leadership changed during %s completed run(s) of (a)/(b); see above"
          % leader_changes)
n_failed = sum(failed.values())
if n_failed:
    print("note: %d run(s) of (a)/(b) FAILED and are left out of the medians: %s" % (
        n_failed, ", ".join("%s -c %d -P %d: %d" % (k + (v,)) for k, v in sorted(failed.items()))))
EOF
