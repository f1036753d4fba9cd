#!/usr/bin/env bash
# The cores must stay free of system calls, clocks, threads and global randomness
# (docs/architecture.md "Cores and shell"): time comes in as now_ms, randomness from a seeded
# hy_prng, I/O goes out as requests. This check fails the build when one of them slips in.
set -euo pipefail
cd "$(dirname "$0")/.."
bad=0
for d in src/proto src/store src/node src/raft src/membership; do
    [ -d "$d" ] || continue
    if hits=$(grep -RnE '#[[:space:]]*include[[:space:]]*<(sys/socket|unistd|pthread|time|sys/time)\.h>|(^|[^_a-zA-Z0-9])s?rand\(' "$d"); then
        echo "lint: $d must not do I/O, read clocks or call rand():"
        echo "$hits"
        bad=1
    fi
done
# libhalyard's core is pure too; only its shells talk to the system (shell.c: blocking, async.c:
# I/O threads and the libuv wakeup, heartbeat.c; rconn.c: the blocking I/O of one connection, shared
# with halyctl and the server's --join) and config_load.c reads the YAML file it is given.
for f in src/client/*.c; do
    case "$f" in src/client/shell.c | src/client/rconn.c | src/client/async.c | src/client/heartbeat.c | src/client/config_load.c) continue ;; esac
    [ -f "$f" ] || continue
    if hits=$(grep -nE '#[[:space:]]*include[[:space:]]*<(sys/socket|unistd|pthread|time|sys/time|poll)\.h>|(^|[^_a-zA-Z0-9])s?rand\(' "$f"); then
        echo "lint: $f must not do I/O, read clocks or call rand():"
        echo "$hits"
        bad=1
    fi
done
exit $bad
