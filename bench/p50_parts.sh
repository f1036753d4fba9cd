#!/usr/bin/env bash
# bench/p50_parts.sh - where one client's durable SET latency goes on a 3-node cluster (issue 17
# target "3 nodes fsync, one client p50 <= 250 us"): the same -c 1 -P 1 run against servers
# that differ in one part each, in the same rounds, the order reversed every other round.
#
#   bench/p50_parts.sh /abs/path/to/halyard [ROUNDS [REQUESTS]]     (defaults 5 and 5000)
#
#   f1     one node, durability fsync: its fdatasync and its loop <-> WAL thread hand-off
#   d3     three nodes, fsync, every node's log on the disk (what bench-cluster measures)
#   d3-1   the same cluster with one follower SIGSTOPped: the leader and one follower sync
#   t3     three nodes, fsync, every log on tmpfs (/dev/shm): the whole fsync-mode chain
#          (hops, hand-offs to the WAL threads) with an fdatasync that costs nothing
#   r3     three nodes, durability replicated, on the disk: the chain without the hand-offs
#   aof    redis-server appendfsync always; esec: appendfsync everysec
#
# Prints each run's SET/s, mean, p50 and p99 (redis-benchmark --csv), then each server's median
# p50 over the rounds. Servers listen on 127.0.0.1, ports from P50_PORT_BASE (default 26000: a
# server's client port, +10 its peer port, +20 its HTTP port; 100 ports per server), are stopped
# by PID on exit, and keep their data in one mktemp directory (and one under /dev/shm).
set -euo pipefail

BIN=${1:?usage: bench/p50_parts.sh /abs/path/to/halyard [ROUNDS [REQUESTS]]}
ROUNDS=${2:-5}
N=${3:-5000}
BASE=${P50_PORT_BASE:-26000}
[ -x "$BIN" ] || { echo "p50_parts: $BIN is not an executable" >&2; exit 1; }
. "$(dirname "${BASH_SOURCE[0]}")/procs.sh" # stop_pid

WORK=$(mktemp -d /tmp/halyard-p50.XXXXXX)
SHM=$(mktemp -d /dev/shm/halyard-p50.XXXXXX)
PIDS=()
STOPPED=""
cleanup() {
    local p
    [ -z "$STOPPED" ] || kill -CONT "$STOPPED" 2>/dev/null || true
    for p in "${PIDS[@]}"; do stop_pid "$p" server; done
    rm -rf "$WORK" "$SHM"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

declare -A PORT

leader_of() { # leader_of NAME NODES FIRST_PORT: waits up to 15 s for a node to say it leads
    local i _ p
    for _ in $(seq 300); do
        for i in $(seq "$2"); do
            p=$(($3 + i))
            if redis-cli -p "$p" INFO replication 2>/dev/null | tr -d '\r' |
                grep -qx raft_role:leader; then
                PORT[$1]=$p
                return 0
            fi
        done
        sleep 0.05
    done
    echo "p50_parts: $1 elected no leader within 15 s" >&2
    exit 1
}

start_halyard() { # start_halyard NAME DURABILITY NODES DIR BASE
    local name=$1 dur=$2 nodes=$3 dir=$4 b=$5 i boot="" peer
    for i in $(seq "$nodes"); do boot="$boot${boot:+,}n$i@127.0.0.1:$((b + 10 + i))"; done
    for i in $(seq "$nodes"); do
        mkdir -p "$dir/n$i"
        peer=()
        if [ "$nodes" -gt 1 ]; then
            peer=(--peer-port $((b + 10 + i)) --bootstrap "$boot" --cluster-secret
                "p50-parts-secret-0123456789")
        fi
        "$BIN" --node-id "n$i" --bind 127.0.0.1 --port $((b + i)) --http-port $((b + 20 + i)) \
            "${peer[@]}" --data-dir "$dir/n$i/data" --durability "$dur" --log-level warn \
            >"$dir/n$i.log" 2>&1 &
        PIDS+=($!)
        eval "PID_${name//-/_}_$i=$!"
    done
    leader_of "$name" "$nodes" "$b"
}

start_redis() { # start_redis NAME FSYNC PORT
    mkdir -p "$WORK/$1"
    redis-server --port "$3" --bind 127.0.0.1 --save "" --appendonly yes --appendfsync "$2" \
        --dir "$WORK/$1" >"$WORK/$1/log" 2>&1 &
    PIDS+=($!)
    PORT[$1]=$3
    local _
    for _ in $(seq 300); do
        [ "$(redis-cli -p "$3" PING 2>/dev/null)" != PONG ] || return 0
        sleep 0.05
    done
    echo "p50_parts: redis $1 did not answer PING within 15 s" >&2
    exit 1
}

start_halyard f1 fsync 1 "$WORK/f1" "$BASE"
start_halyard d3 fsync 3 "$WORK/d3" $((BASE + 100))
start_halyard t3 fsync 3 "$SHM/t3" $((BASE + 200))
start_halyard r3 replicated 3 "$WORK/r3" $((BASE + 300))
start_redis aof always $((BASE + 401))
start_redis esec everysec $((BASE + 402))
PORT[d3-1]=${PORT[d3]}
# The follower d3-1 stops: any node of d3 but its leader.
for i in 1 2 3; do
    if [ $((BASE + 100 + i)) != "${PORT[d3]}" ]; then
        v="PID_d3_$i"
        FOLLOWER=${!v}
    fi
done

ALL=(f1 d3 d3-1 t3 r3 aof esec)
for k in f1 d3 t3 r3 aof esec; do # warm up: connections, first segment
    timeout 60 redis-benchmark -p "${PORT[$k]}" -t set -c 1 -n 2000 -r 100000 -q >/dev/null 2>&1
done
declare -A P50S
echo "p50_parts: $ROUNDS rounds of -c 1 -P 1 -n $N, $(date -u '+%F %H:%M UTC'), load $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$ROUNDS"); do
    order=("${ALL[@]}")
    if [ $((r % 2)) = 0 ]; then
        order=()
        for ((i = ${#ALL[@]} - 1; i >= 0; i--)); do order+=("${ALL[$i]}"); done
    fi
    for k in "${order[@]}"; do
        if [ "$k" = d3-1 ]; then
            kill -STOP "$FOLLOWER"
            STOPPED=$FOLLOWER
        fi
        line=$(timeout 120 redis-benchmark -p "${PORT[$k]}" -t set -c 1 -P 1 -n "$N" -r 100000 \
            --csv 2>/dev/null | tail -1 || true)
        if [ "$k" = d3-1 ]; then
            kill -CONT "$FOLLOWER"
            STOPPED=""
            sleep 2 # it catches up before d3 runs again
        fi
        p50=$(echo "$line" | awk -F'"' '$2 == "SET" { printf "%.0f", $10 * 1000 }')
        echo "$line" | awk -F'"' -v k="$k" -v r="$r" '$2 == "SET" {
            printf "round %d %-5s %8.0f SET/s  mean %6.0f us  p50 %6.0f us  p99 %6.0f us\n",
                r, k, $4, $6 * 1000, $10 * 1000, $14 * 1000 }'
        [ -z "$p50" ] || P50S[$k]="${P50S[$k]:-} $p50"
    done
done
echo "median p50 over the rounds (us):"
for k in "${ALL[@]}"; do
    # shellcheck disable=SC2086 # a list of numbers
    printf "  %-5s %6s   (%s )\n" "$k" "$(printf '%s\n' ${P50S[$k]:-} | sort -n |
        awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "failed" }')" \
        "${P50S[$k]:-}"
done
