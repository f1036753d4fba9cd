#!/usr/bin/env bash
# tests/sim/run.sh <outdir> - the simulator's part of `make test` (docs/architecture.md "Testing", layer 2).
#
# 1. Clean seeds: SIM_SEEDS seeds (default 3000) of the full fault swarm; the node count cycles
#    3, 5, 7 with the seed. Two halves run in parallel (make test runs on 2 cores).
# 2. Mutation test: each known bug injected through raft_config.mutation must be reported by
#    the simulator within a bounded number of seeds, which proves the checkers can fail.
# 3. Scripted membership scenarios (sim/scenario.c; issue 20): SCEN_SEEDS seeds (default 100)
#    each of join-absent, join-refused and force-phantom.
# Exits non-zero on any failing clean seed or any mutation left undetected.
set -uo pipefail
out=${1:?usage: tests/sim/run.sh <outdir holding halyard-sim>}
sim="$out/halyard-sim"
[ -x "$sim" ] || { echo "sim: $sim is not built"; exit 1; }
seeds=${SIM_SEEDS:-3000}
from=${SIM_FROM:-1}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

half=$((seeds / 2))
start=$(date +%s)
"$sim" --seeds "$half" --from "$from" --quiet >"$tmp/a" 2>&1 &
pid=$!
"$sim" --seeds "$((seeds - half))" --from "$((from + half))" --quiet >"$tmp/b" 2>&1
rb=$?
wait "$pid"
ra=$?
cat "$tmp/a" "$tmp/b" | grep -v ' passed, ' || true
passed=$(cat "$tmp/a" "$tmp/b" | awk '/ passed, / {p += $1; f += $3} END {print p + 0, f + 0}')
echo "sim: clean seeds $from..$((from + seeds - 1)) (3/5/7 nodes, swarm faults):" \
     "${passed% *} passed, ${passed#* } failed in $(( $(date +%s) - start ))s"
if [ "$ra" -ne 0 ] || [ "$rb" -ne 0 ] || [ "${passed#* }" != 0 ] || [ "${passed% *}" != "$seeds" ]; then
    fail=1
fi

# name, fault list, node count (0 = cycle), bound in seeds. Bounds leave room over the
# measured first detection with the black-box checker (commit-old-term: 264; forget-vote: 11;
# read-no-heartbeat: 21; read-before-noop: 5; the rest: 1).
while read -r name faults nodes bound; do
    args=(--seeds "$bound" --from 1 --mutation "$name" --faults "$faults" --first-failure --quiet)
    [ "$nodes" != 0 ] && args+=(--nodes "$nodes")
    res=$("$sim" "${args[@]}" 2>&1)
    if n=$(grep -o 'first failure after [0-9]*' <<<"$res"); then
        why=$(grep -m1 'FAILED' <<<"$res" | sed 's/.*): //')
        echo "sim: mutation $name caught (${n#first failure after } seeds): $why"
    else
        echo "sim: mutation $name NOT caught within $bound seeds"
        fail=1
    fi
done <<'LIST'
commit-old-term crash,drop,partition,isolate 3 1000
forget-vote crash,dup,delay 0 300
vote-stale-log all 0 50
apply-uncommitted all 0 50
read-no-heartbeat isolate,partition,drop 0 300
read-before-noop isolate,crash,transfer 0 100
no-truncate all 0 50
LIST

scen_seeds=${SCEN_SEEDS:-100}
for scen in join-absent join-refused force-phantom; do
    res=$("$sim" --scenario "$scen" --seeds "$scen_seeds" --from "$from" --quiet 2>&1)
    rc=$?
    grep -v ' passed, ' <<<"$res" || true
    echo "sim: scenario $scen: $(grep ' passed, ' <<<"$res")"
    [ "$rc" -ne 0 ] && fail=1
done

if [ "$fail" -ne 0 ]; then
    echo "sim: FAILED"
    exit 1
fi
echo "sim: ok"
