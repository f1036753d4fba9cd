#!/usr/bin/env bash
# Leader changes of a 3-node cluster under pipelined writes (issue 17, docs/performance.md
# "Leader changes under load"). Nothing here is a pass/fail test.
#
#   bench/churn.sh /abs/path/to/halyard [RUNS] [halyard flags...]
#
# Starts 3 nodes (default settings, --log-level info, plus the flags given), then runs
# redis-benchmark -t set -P 16 -c 50 -n CHURN_N (default 200000) -r 100000 against the leader
# RUNS times (default 4). Per run it prints the SET/s (or FAILED: redis-benchmark stops at the
# first -TRYAGAIN or -UNKNOWN a leader change answers), the highest Raft term of the three
# nodes before and after (each term above the first is an election), the leader before and
# after, the three nodes' CPU time per SET and the load average at the start. At the end: the
# runs with a term change, the elections, and the nodes' step-down reasons and excused
# timeouts from their logs. Run it under `nice -n 10` on a shared machine, as the figures in
# docs/performance.md were: the point is a cluster that does not churn when it is starved.
# Everything listens on 127.0.0.1 and is stopped by PID on exit; the data lives in one mktemp
# directory, removed on exit. Every step has a time bound.
set -euo pipefail

[ $# -ge 1 ] || { echo "usage: bench/churn.sh /abs/path/to/halyard [RUNS] [flags...]" >&2; exit 1; }
BIN=$1
RUNS=${2:-4}
shift $(($# >= 2 ? 2 : 1))
N=${CHURN_N:-200000}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
[ -x "$BIN" ] || { echo "churn: $BIN is not an executable" >&2; exit 1; }

WORK=$(mktemp -d /tmp/halyard-churn.XXXXXX)
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r -a PORTS <<<"$(/usr/bin/python3 - "$ROOT/tests/integration" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
from cluster import free_port_pair
taken = set()
while len(taken) < 6:
    p = free_port_pair()
    if not {p, p + 10000} & taken:
        taken |= {p, p + 10000}
        print(p, end=" ")
EOF
)"
boot="n1@127.0.0.1:$((PORTS[0] + 10000)),n2@127.0.0.1:$((PORTS[1] + 10000))"
boot="$boot,n3@127.0.0.1:$((PORTS[2] + 10000))"
secret=$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')
for i in 1 2 3; do
    p=${PORTS[$((i - 1))]}
    mkdir -p "$WORK/n$i"
    # The run's whole length bounds each node; cleanup stops them earlier.
    (cd "$WORK/n$i" && exec timeout $((120 + RUNS * 320)) "$BIN" --node-id "n$i" \
        --bind 127.0.0.1 --port "$p" --peer-port $((p + 10000)) --data-dir "$WORK/n$i/data" \
        --bootstrap "$boot" --cluster-secret "$secret" --log-level info "$@" \
        >"$WORK/n$i/log" 2>&1) &
    PIDS+=($!)
done

info() { # info PORT FIELD
    timeout 5 redis-cli -h 127.0.0.1 -p "$1" INFO all 2>/dev/null | tr -d '\r' | sed -n "s/^$2://p"
}
leader() { # the client port of the node that says it leads (30 s)
    local p
    for _ in $(seq 300); do
        for p in "${PORTS[@]}"; do
            [ "$(info "$p" raft_role)" = leader ] && { echo "$p"; return 0; }
        done
        sleep 0.1
    done
    echo "churn: no leader within 30 s" >&2
    exit 1
}
top_term() {
    local p
    for p in "${PORTS[@]}"; do info "$p" raft_term; done | sort -n | tail -1
}
. "$(dirname "${BASH_SOURCE[0]}")/cpu.sh"
node_pids() { # the three nodes' halyard processes (each under its timeout)
    local pid
    for pid in "${PIDS[@]}"; do pgrep -P "$pid" || echo "$pid"; done
}

L=$(leader)
changed=0
elections=0
for r in $(seq "$RUNS"); do
    t0=$(top_term)
    c0=$(cpu_ticks $(node_pids))
    load=$(cut -d' ' -f1 /proc/loadavg)
    rps=$(timeout 300 redis-benchmark -h 127.0.0.1 -p "$L" -t set -P 16 -c 50 -n "$N" -r 100000 \
        -q --csv 2>/dev/null | awk -F, '/"SET"/ { gsub(/"/, "", $2); print $2 }') || true
    c1=$(cpu_ticks $(node_pids))
    t1=$(top_term)
    L2=$(leader)
    [ "$t1" != "$t0" ] && changed=$((changed + 1))
    elections=$((elections + t1 - t0))
    printf 'run %d: %s SET/s, term %s -> %s, leader on %s -> %s, CPU %s us/SET (3 nodes), load %s\n' \
        "$r" "${rps:-FAILED}" "$t0" "$t1" "$L" "$L2" \
        "$(awk -v d=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" -v n="$N" 'BEGIN { printf "%.1f", d / hz * 1e6 / n }')" \
        "$load"
    L=$L2
done
echo "runs with a leader change: $changed of $RUNS; elections: $elections"
echo "step-downs: $(cat "$WORK"/n*/log | grep -o 'steps down in term [0-9]* (group [0-9]*: [a-z -]*' |
    sed 's/.*: //' | sort | uniq -c | tr -s ' \n' ' ')"
echo "timeouts excused for the node's own deafness: $(cat "$WORK"/n*/log | grep -c 'excused: this server' || true)"
echo "slow loop turns logged: $(cat "$WORK"/n*/log | grep -c 'slow event loop turn' || true);" \
     "their wall and CPU ms: $(cat "$WORK"/n*/log | sed -n 's/.*turn: \([0-9]*\) ms of work, \([0-9]*\) ms of it on a CPU.*/\1\/\2/p' |
         head -12 | tr '\n' ' ')"
