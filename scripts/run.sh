#!/usr/bin/env bash
# `make run`: a local 3-node halyard cluster on 127.0.0.1, client ports 7379-7381 (peer ports
# 17379-17381), data under ./data/n1..n3, in the foreground. Ctrl-C stops all three cleanly.
# The cluster is partitioned: PARTITIONS (default 16) Raft groups whose leaderships spread over
# the three nodes (docs/partitioning.md). A data directory made before keeps its own count.
#
#   scripts/run.sh /abs/path/to/halyard [--tls] [extra halyard flags for every node...]
#
# --tls: TLS everywhere. A CA and one certificate per node (for 127.0.0.1 and localhost) are made
# once with the openssl CLI in ./data/tls; clients use TLS on 7379-7381 (no clear-text port),
# members speak mutual TLS to each other (tls-cluster), /health and /metrics are HTTPS, and
# clients must show a certificate signed by the CA (data/tls/client.crt is made for them).
#
# The cluster secret is made once and kept in ./data/cluster-secret (mode 600), so restarts
# find each other again; each node reads it from its own config file, ./data/nN.yaml (mode
# 600), not from its command line, which every local user can read (/proc/PID/cmdline, ps). Each node's log goes to ./data/nN.log; this script prints the leader
# and how to connect once the cluster answers.
set -euo pipefail

BIN=${1:?usage: scripts/run.sh /abs/path/to/halyard [--tls] [flags...]}
shift
[ -x "$BIN" ] || { echo "run: $BIN is not an executable (run make first)" >&2; exit 1; }
TLS=0
if [ "${1:-}" = "--tls" ]; then
    TLS=1
    shift
fi

HOST=127.0.0.1
PORTS=(7379 7380 7381)
mkdir -p data
for p in "${PORTS[@]}" $((PORTS[0] + 10000)) $((PORTS[1] + 10000)) $((PORTS[2] + 10000)) \
    $((PORTS[0] + 1000)) $((PORTS[1] + 1000)) $((PORTS[2] + 1000)); do
    if (exec 3<>"/dev/tcp/$HOST/$p") 2>/dev/null; then
        echo "run: something already listens on $HOST:$p (another halyard or redis?)" >&2
        exit 1
    fi
done
if [ ! -s data/cluster-secret ]; then
    (umask 077; od -An -tx1 -N24 /dev/urandom | tr -d ' \n' > data/cluster-secret)
fi
SECRET=$(cat data/cluster-secret)
for i in 1 2 3; do
    (umask 077; printf 'cluster-secret: "%s"\n' "$SECRET" > "data/n$i.yaml")
done
BOOT="n1@$HOST:17379,n2@$HOST:17380,n3@$HOST:17381"

# The local CA and certificates for --tls (EC P-256, valid for a year), made once.
make_certs() {
    local d=data/tls ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
    [ -s "$d/ca.crt" ] && return 0
    mkdir -p "$d"
    (umask 077
     openssl req -x509 "${ec[@]}" -keyout "$d/ca.key" -out "$d/ca.crt" -days 365 \
         -subj "/CN=halyard local CA" 2>/dev/null
     printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$d/san.ext"
     for who in n1 n2 n3 client; do
         openssl req "${ec[@]}" -keyout "$d/$who.key" -out "$d/$who.csr" -subj "/CN=$who" \
             2>/dev/null
         openssl x509 -req -in "$d/$who.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" \
             -CAcreateserial -out "$d/$who.crt" -days 365 -extfile "$d/san.ext" 2>/dev/null
     done) || { echo "run: openssl could not make the certificates" >&2; exit 1; }
    echo "run: made a CA and certificates in $d"
}
tls_flags() {
    local i=$1 port=$2 d=data/tls
    echo --port 0 --tls-port "$port" --tls-cert-file "$d/n$i.crt" --tls-key-file "$d/n$i.key" \
        --tls-ca-cert-file "$d/ca.crt" --tls-cluster yes --tls-http yes \
        --http-port $((port + 1000))
}
CLI=(redis-cli)
if [ "$TLS" = 1 ]; then
    make_certs
    CLI=(redis-cli --tls --cacert data/tls/ca.crt --cert data/tls/client.crt
         --key data/tls/client.key)
fi

pids=()
stop() {
    trap - INT TERM
    echo
    echo "stopping the cluster..."
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    rc=0
    for pid in "${pids[@]}"; do wait "$pid" || rc=$?; done
    echo "stopped (exit $rc)"
    exit "$rc"
}
trap stop INT TERM

for i in 1 2 3; do
    port=${PORTS[$((i - 1))]}
    extra=()
    if [ "$TLS" = 1 ]; then
        read -r -a extra <<< "$(tls_flags "$i" "$port")"
    fi
    "$BIN" --node-id "n$i" --bind "$HOST" --port "$port" --peer-port $((port + 10000)) \
        --data-dir "data/n$i" --bootstrap "$BOOT" --config "data/n$i.yaml" \
        --partitions "${PARTITIONS:-16}" "${extra[@]}" "$@" \
        >> "data/n$i.log" 2>&1 &
    pids+=($!)
done

leader=""
for _ in $(seq 300); do
    for port in "${PORTS[@]}"; do
        if "${CLI[@]}" -h "$HOST" -p "$port" INFO replication 2>/dev/null |
            grep -q '^raft_role:leader'; then
            leader=$port
        fi
    done
    [ -n "$leader" ] && break
    for pid in "${pids[@]}"; do
        kill -0 "$pid" 2>/dev/null || { echo "run: a node exited; see data/n*.log" >&2; stop; }
    done
    sleep 0.1
done
if [ -z "$leader" ]; then
    echo "run: no leader after 30 s; see data/n*.log" >&2
    stop
fi
parts=$("${CLI[@]}" -h "$HOST" -p "$leader" CONFIG GET partitions 2>/dev/null | tail -n 1)
# The metadata group has a leader; each partition elects its own. "Up" means every node knows a
# leader for every partition (what /health/ready also asks), so the first commands are served.
settled=0
for _ in $(seq 300); do
    settled=1
    for port in "${PORTS[@]}"; do
        "${CLI[@]}" -h "$HOST" -p "$port" HALYARD STATUS 2>/dev/null |
            grep -q 'without a known leader: 0,' || settled=0
    done
    [ "$settled" = 1 ] && break
    sleep 0.1
done
if [ "$settled" = 0 ]; then
    echo "run: some partitions have no leader after 30 s (elections go on; see" \
         "build/halyctl -p 7379 cluster status and data/n*.log)" >&2
fi
echo "halyard cluster is up: nodes on $HOST:7379-7381, $parts partitions (keys of one" \
     "multi-key command share a {hash tag}); metadata leader on $HOST:$leader"
if [ "$TLS" = 1 ]; then
    echo "TLS everywhere (clients, members, HTTPS); certificates in data/tls"
    echo "connect with: ${CLI[*]} -p 7379"
    echo "health and metrics: curl --cacert data/tls/ca.crt https://$HOST:8379/health/ready"
    echo "admin: build/halyctl --tls --cacert data/tls/ca.crt --cert data/tls/client.crt \\"
    echo "         --key data/tls/client.key -p 7379 cluster status"
else
    echo "connect with: redis-cli -p 7379    (any node: followers forward requests to the leader;"
    echo "              logs in data/n1.log..n3.log)"
    echo "health and metrics: curl $HOST:8379/health/ready, $HOST:8379/metrics (8379-8381)"
    echo "admin: build/halyctl -p 7379 cluster status    (partitions and leaders per node)"
fi
echo "press Ctrl-C to stop all three"
wait
