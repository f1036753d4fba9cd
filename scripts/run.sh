#!/usr/bin/env bash
# `make run`: start halyard on 127.0.0.1:7379 in the foreground, data under ./data/n1.
#
#   scripts/run.sh /abs/path/to/halyard [extra halyard flags...]
#
# The script execs the server, so the server itself receives Ctrl-C (SIGINT) and shuts down
# gracefully (exit 0). A small background watcher prints how to connect once the server
# answers PING (it gives up after 30 s; the server's own log says why it did not start).
# When clustering lands this becomes a local 3-node cluster on 7379-7381 (DESIGN.md §8).
set -euo pipefail

BIN=${1:?usage: scripts/run.sh /abs/path/to/halyard [flags...]}
shift
[ -x "$BIN" ] || { echo "run: $BIN is not an executable (run make first)" >&2; exit 1; }

HOST=127.0.0.1
PORT=7379
DATA=./data/n1
mkdir -p "$DATA"

if (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; then
    echo "run: something is already listening on $HOST:$PORT (another halyard or redis?)" >&2
    exit 1
fi

# The watcher: announce readiness once PING answers. It inherits no stdin and ends on its own.
(
    for _ in $(seq 600); do
        if [ "$(redis-cli -h "$HOST" -p "$PORT" PING 2>/dev/null)" = "PONG" ]; then
            echo "halyard is listening on $HOST:$PORT — connect with: redis-cli -p $PORT"
            echo "(Ctrl-C stops it cleanly; data in $DATA)"
            exit 0
        fi
        sleep 0.05
    done
    echo "run: halyard did not answer PING on $HOST:$PORT within 30 s" >&2
) </dev/null &

exec "$BIN" --bind "$HOST" --port "$PORT" --data-dir "$DATA" "$@"
