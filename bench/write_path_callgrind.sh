#!/usr/bin/env bash
# Instructions per durable SET (user space, every thread of the server and its forked
# snapshot encoders), counted by valgrind's callgrind: a figure that a shared, noisy machine
# barely moves, to compare builds of the write path (docs/performance.md).
#
#   bench/write_path_callgrind.sh /abs/path/to/halyard [OUTDIR]
#
# Starts halyard under callgrind with instrumentation off, preloads CG_KEYS keys (default
# 10000), then for -P 16 (CG_N_PIPE SETs, default 50000) and -P 1 (CG_N SETs, default 10000),
# 50 clients each, zeroes the counters, runs redis-benchmark and dumps them. Prints Ir per SET
# and keeps the dumps in OUTDIR (callgrind_annotate OUTDIR/cg.<pid>.out.1 shows where they
# go). The kernel's share (system calls, fdatasync) is not counted: see bench/write_path.sh.
set -euo pipefail

BIN=${1:?usage: bench/write_path_callgrind.sh /abs/path/to/halyard [OUTDIR]}
OUT=${2:-$(mktemp -d /tmp/halyard-cg.XXXXXX)}
KEYS=${CG_KEYS:-10000}
N=${CG_N:-10000}
N_PIPE=${CG_N_PIPE:-50000}
PY=/usr/bin/python3
command -v valgrind >/dev/null || { echo "valgrind not found" >&2; exit 1; }
mkdir -p "$OUT"
PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$OUT/cg.%p.out" \
    "$BIN" --bind 127.0.0.1 --port "$PORT" --data-dir "$OUT/data" --log-level warn \
    >"$OUT/halyard.log" 2>&1 &
PID=$!
trap 'kill -TERM $PID 2>/dev/null || true; wait $PID 2>/dev/null || true' EXIT
for _ in $(seq 200); do
    [ "$(redis-cli -p "$PORT" PING 2>/dev/null)" = "PONG" ] && break
    kill -0 "$PID" 2>/dev/null || { cat "$OUT/halyard.log" >&2; exit 1; }
    sleep 0.2
done
bench() { redis-benchmark -p "$PORT" -t set -c 50 -r "$KEYS" -n "$1" -P "$2" -q >/dev/null 2>&1; }
bench "$((KEYS * 3))" 16 # load the keys (uninstrumented)
callgrind_control -i on "$PID" >/dev/null 2>&1
part=0
for spec in "16 $N_PIPE" "1 $N"; do
    set -- $spec
    callgrind_control -z "$PID" >/dev/null 2>&1
    bench "$2" "$1"
    callgrind_control -d "P$1" "$PID" >/dev/null 2>&1
    part=$((part + 1))
    ir=$(sed -n 's/^summary: //p' "$OUT/cg.$PID.out.$part")
    echo "SET -P $1: $2 requests, $ir Ir in the server's threads, $((ir / $2)) Ir per SET"
done
# Forked snapshot encoders write a file each when they exit (instrumented ones only).
child=0
for f in "$OUT"/cg.*.out; do
    case $f in "$OUT/cg.$PID.out") continue ;; esac
    s=$(sed -n 's/^summary: //p' "$f" | tail -1)
    child=$((child + ${s:-0}))
done
echo "forked snapshot encoders (both runs): $child Ir; dumps in $OUT"
