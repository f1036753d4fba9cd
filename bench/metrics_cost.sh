#!/usr/bin/env bash
# The cost of scraping /metrics once a second on SET throughput (issue 14; target <= 2%).
#
#   bench/metrics_cost.sh /abs/path/to/halyard
#
# One halyard node (PARTITIONS partitions, default 1: with 1024 a scrape carries the most
# partition state); redis-benchmark -t set -c 50 -r 100000 -n BENCH_N (default 200000), in
# BENCH_ROUNDS rounds (default 5) of two runs each: one while a scraper GETs /metrics every
# second, one without, their order alternating per round. Prints each round (SET/s and the
# server's CPU time per SET, all its threads, from /proc/PID/stat), the medians of both, the
# throughput ratio scraped/quiet and the cost (1 - ratio), the CPU-per-SET ratio, and the
# medians of each round's own two ratios; then the server's CPU time per scrape, which noise
# does not blur. Not a pass/fail test: on a shared machine the noise between runs can exceed
# the effect measured.
set -euo pipefail

N=${BENCH_N:-200000}
ROUNDS=${BENCH_ROUNDS:-5}
PARTITIONS=${PARTITIONS:-1}
PY=/usr/bin/python3
die() { echo "bench-metrics: $*" >&2; exit 1; }
[ $# -eq 1 ] && [ -x "$1" ] || die "usage: bench/metrics_cost.sh /abs/path/to/halyard"
HALYARD_BIN=$1
command -v redis-benchmark >/dev/null || die "redis-benchmark not found (package redis-tools)"

WORK=$(mktemp -d /tmp/halyard-metrics-bench.XXXXXX)
HY_PID=""
SCRAPER_PID=""
cleanup() {
    for pid in "$SCRAPER_PID" "$HY_PID"; do
        [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r PORT HTTP_PORT < <("$PY" -c '
import socket
a, b = socket.socket(), socket.socket()
a.bind(("127.0.0.1", 0)); b.bind(("127.0.0.1", 0))
print(a.getsockname()[1], b.getsockname()[1])')
"$HALYARD_BIN" --bind 127.0.0.1 --port "$PORT" --http-port "$HTTP_PORT" \
    --data-dir "$WORK/data" --partitions "$PARTITIONS" --log-level warn >"$WORK/halyard.log" 2>&1 &
HY_PID=$!
for _ in $(seq 300); do
    [ "$(redis-cli -h 127.0.0.1 -p "$PORT" PING 2>/dev/null)" = "PONG" ] && break
    kill -0 "$HY_PID" 2>/dev/null || { cat "$WORK/halyard.log" >&2; die "halyard exited"; }
    sleep 0.05
done

start_scraper() { # GET /metrics every second; counts scrapes and bytes in $WORK/scrapes
    "$PY" - "$HTTP_PORT" "$WORK/scrapes" <<'PYEOF' &
import sys, time, urllib.request
port, out = sys.argv[1], sys.argv[2]
n = size = 0
while True:
    t = time.monotonic()
    with urllib.request.urlopen("http://127.0.0.1:%s/metrics" % port, timeout=5) as r:
        size = len(r.read())
    n += 1
    with open(out, "w") as f:
        f.write("%d %d\n" % (n, size))
    time.sleep(max(0.0, 1.0 - (time.monotonic() - t)))
PYEOF
    SCRAPER_PID=$!
}
stop_scraper() {
    kill -TERM "$SCRAPER_PID" 2>/dev/null || true
    wait "$SCRAPER_PID" 2>/dev/null || true
    SCRAPER_PID=""
}
set_rps() { # one SET run; prints requests per second
    redis-benchmark -h 127.0.0.1 -p "$PORT" -t set -c 50 -r 100000 -n "$N" -q --csv |
        awk -F'","' '{ gsub(/"/, "", $1); gsub(/"/, "", $2) } $1 == "SET" { print $2 }'
}
server_cpu_ticks() { # utime + stime of every thread of the server, in clock ticks
    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$HY_PID/stat"
}

echo "halyard /metrics scraping cost — $(date -u '+%Y-%m-%d %H:%M UTC') — $(nproc) CPU(s)"
echo "partitions $PARTITIONS; redis-benchmark -t set -c 50 -r 100000 -n $N, $ROUNDS rounds, order alternating"
# Every partition must have its leader before anything is measured.
for _ in $(seq 600); do
    led=$("$PY" -c 'import json, sys, urllib.request
print(json.load(urllib.request.urlopen("http://127.0.0.1:%s/health" % sys.argv[1], timeout=5))["partitionsWithoutLeader"])' "$HTTP_PORT" 2>/dev/null || echo x)
    [ "$led" = "0" ] && [ "$(redis-cli -h 127.0.0.1 -p "$PORT" SET warm 1 2>/dev/null)" = "OK" ] && break
    sleep 0.1
done
: >"$WORK/results"
for r in $(seq "$ROUNDS"); do
    order="quiet scraped"
    [ $((r % 2)) -eq 0 ] && order="scraped quiet"
    for mode in $order; do
        [ "$mode" = scraped ] && start_scraper
        t0=$(server_cpu_ticks)
        rps=$(set_rps)
        t1=$(server_cpu_ticks)
        [ "$mode" = scraped ] && stop_scraper
        cpu_us=$(awk -v d=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" -v n="$N" \
            'BEGIN { printf "%.2f", d / hz / n * 1e6 }')
        echo "$mode $rps $cpu_us" >>"$WORK/results"
        printf 'round %d %-8s %10s SET/s %8s us CPU/SET\n' "$r" "$mode" "$rps" "$cpu_us"
    done
done
# The A/B above drowns in noise on a shared machine; the server's own CPU per scrape does
# not: 3000 scrapes back to back on one connection, CPU time from /proc/PID/stat.
"$PY" - "$HY_PID" "$HTTP_PORT" <<'PYEOF'
import http.client, os, sys
pid, port = sys.argv[1], int(sys.argv[2])
tick = os.sysconf("SC_CLK_TCK")
def cpu_s():
    f = open("/proc/%s/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / tick
c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
n = 3000
before = cpu_s()
for _ in range(n):
    c.request("GET", "/metrics")
    c.getresponse().read()
per_us = (cpu_s() - before) / n * 1e6
c.request("GET", "/metrics")
size = len(c.getresponse().read())
print("server CPU per scrape: %.0f us, i.e. %.4f%% of one core at one scrape a second (%d bytes)" % (per_us, per_us / 1e4, size))
PYEOF
[ "$ROUNDS" -gt 0 ] || exit 0
read -r SCRAPES BYTES <"$WORK/scrapes" || true
"$PY" - "$WORK/results" "${BYTES:-0}" <<'PYEOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
def med(mode, col):
    return statistics.median(float(r[col]) for r in rows if r[0] == mode)
q, s = med("quiet", 1), med("scraped", 1)
qc, sc = med("quiet", 2), med("scraped", 2)
print("median SET/s: quiet %.0f, scraped every 1 s %.0f; ratio %.3f, cost %.1f%% (target <= 2%%); "
      "one scrape is %s bytes" % (q, s, s / q, 100.0 * (1 - s / q), sys.argv[2]))
print("median server CPU per SET: quiet %.2f us, scraped %.2f us; ratio %.3f" % (qc, sc, sc / qc))
# Each round's pair ran back to back: the median of the rounds' own ratios drifts less with
# the machine's load than the ratio of the medians.
quiet = [r for r in rows if r[0] == "quiet"]
scraped = [r for r in rows if r[0] == "scraped"]
pairs = list(zip(quiet, scraped))
print("median of the rounds' ratios (scraped/quiet): SET/s %.3f, CPU per SET %.3f (%d rounds)" % (
    statistics.median(float(s[1]) / float(q[1]) for q, s in pairs),
    statistics.median(float(s[2]) / float(q[2]) for q, s in pairs), len(pairs)))
PYEOF
