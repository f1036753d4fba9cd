#!/usr/bin/env bash
# tests/sim/run.sh <outdir> - the simulator's part of `make test` (docs/architecture.md "Testing", layer 2).
#
# 1. Clean seeds: SIM_SEEDS seeds (default 3000) of the full fault swarm; the node count cycles
#    3, 5, 7 with the seed. Two halves run in parallel (make test runs on 2 cores).
# 2. Mutation test: each known bug injected through raft_config.mutation must be reported by
#    the simulator within a bounded number of seeds, which proves the checkers can fail.
# 3. Scripted membership scenarios (sim/scenario.c; issue 20): SCEN_SEEDS seeds (default 100)
#    each of join-absent, join-refused and force-phantom.
# 4. Whole nodes (halyard-sim --whole, sim/whole.c; issue 10): WHOLE_SEEDS seeds (default 1000;
#    3 and 5 nodes, proxy and moved modes, the seed's own faults, the operator among them) in
#    two parallel halves, WHOLE_MOVED_SEEDS (200) in moved mode and WHOLE_SEVEN_SEEDS (60) with
#    7 nodes; one seed run twice must give the same trace digest; each node-level mutation
#    must be caught within its bound; the regression seeds of fixed bugs must pass; and the
#    seeds of open bugs must still fail with the flag that exposes them (when one passes, the
#    bug was fixed: drop the flag's workaround and make the seed a plain one).
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

# ---- whole nodes ----------------------------------------------------------------------------
# One exemption (whole.h, enum whole_known_bug): the open bug of re-added members below, whose
# witnesses (the "Open bugs" list) must still fail without it. With it a seed whose end shows
# exactly that bug (a live member refusing one the leader's configuration holds) skips only
# the end's liveness and convergence checks; every safety check still runs. (The proxy bug
# once tolerated here is fixed.)
tol=(--tolerate rejoin-refused)
wseeds=${WHOLE_SEEDS:-1000}
wfrom=${WHOLE_FROM:-1}
whalf=$((wseeds / 2))
start=$(date +%s)
"$sim" --whole --seeds "$whalf" --from "$wfrom" --quiet "${tol[@]}" >"$tmp/wa" 2>&1 &
pid=$!
"$sim" --whole --seeds "$((wseeds - whalf))" --from "$((wfrom + whalf))" --quiet "${tol[@]}" \
    >"$tmp/wb" 2>&1
rb=$?
wait "$pid"
ra=$?
cat "$tmp/wa" "$tmp/wb" | grep -v ' passed, \|^note: tolerated' || true
passed=$(cat "$tmp/wa" "$tmp/wb" | awk '/ passed, / {p += $1; f += $3} END {print p + 0, f + 0}')
echo "sim: whole-node seeds $wfrom..$((wfrom + wseeds - 1)) (3/5 nodes, proxy/moved, swarm faults):" \
     "${passed% *} passed, ${passed#* } failed in $(( $(date +%s) - start ))s"
if [ "$ra" -ne 0 ] || [ "$rb" -ne 0 ] || [ "${passed#* }" != 0 ] || [ "${passed% *}" != "$wseeds" ]; then
    fail=1
fi

# Moved mode never proxies, so the known proxy bug cannot show there: these seeds run without
# any exemption. Seed 4 is the regression seed of a refused ReadIndex round answered as a
# request-timeout-ms expiry after 168 ms (fixed in replica.c/dispatch.c).
mseeds=${WHOLE_MOVED_SEEDS:-200}
res=$("$sim" --whole --moved --seeds "$mseeds" --from 1 --quiet 2>&1)
rc=$?
grep -v ' passed, ' <<<"$res" || true
echo "sim: whole-node seeds 1..$mseeds in moved mode, no exemption: $(grep ' passed, ' <<<"$res")"
[ "$rc" -ne 0 ] && fail=1

# Seven nodes (the seeds above have 3 or 5): the same swarm, the operator included.
sseeds=${WHOLE_SEVEN_SEEDS:-60}
res=$("$sim" --whole --nodes 7 --seeds "$sseeds" --from 1 --quiet 2>&1)
rc=$?
grep -v ' passed, ' <<<"$res" || true
echo "sim: whole-node seeds 1..$sseeds with 7 nodes: $(grep ' passed, ' <<<"$res")"
[ "$rc" -ne 0 ] && fail=1

# Seeds twice: the same trace digest (a seed replays bit for bit). 57 has the operator,
# clock steps, disk stalls and hash fields.
for seed in 42 57; do
    d1=$("$sim" --whole --seed "$seed" "${tol[@]}" | grep -o 'trace digest [0-9a-f]*')
    d2=$("$sim" --whole --seed "$seed" "${tol[@]}" | grep -o 'trace digest [0-9a-f]*')
    if [ -n "$d1" ] && [ "$d1" = "$d2" ]; then
        echo "sim: whole-node seed $seed replays exactly ($d1)"
    else
        echo "sim: whole-node seed $seed does NOT replay: '$d1' then '$d2'"
        fail=1
    fi
done

# Node-level mutations: name, bound in seeds (measured first detection: ack-before-fsync 1,
# snapshot-ahead 2, session-ignored 1, resend-bare 3, stale-reply 3 (25 before disk stalls and
# hashes came in), apply-clock 1, session-forget 1).
while read -r name bound; do
    res=$("$sim" --whole --seeds "$bound" --from 1 --mutation "$name" "${tol[@]}" \
          --first-failure --quiet 2>&1)
    if n=$(grep -o 'first failure after [0-9]*' <<<"$res"); then
        why=$(grep -m1 'FAILED' <<<"$res" | sed 's/.*ms: //')
        echo "sim: whole-node mutation $name caught (${n#first failure after } seeds): $why"
    else
        echo "sim: whole-node mutation $name NOT caught within $bound seeds"
        fail=1
    fi
done <<'LIST'
ack-before-fsync 60
snapshot-ahead 60
session-ignored 30
resend-bare 30
stale-reply 60
apply-clock 10
session-forget 30
LIST

# Regression seeds of bugs this simulator found, each fixed: they must pass.
# 7: proxy.c kept retry_since_ms after a re-run forward was answered (the next forward timed
# out at once). 501687, 800348: a request that waited for a leader was forwarded with a fresh
# deadline. 88, 243: a write re-sent under the follower's session after its first copy was
# applied was refused ("READONLY disk full") and the refusal reached the client as "not
# applied".
# 2000558, 2000781: the operator re-added a removed member under its name before every member
# had the change (below); it now waits, and they must pass.
# 5001256: a request re-run on a follower that then became leader got a fresh deadline
# (replica_waiter_new now keeps the first attempt's, retry_since_ms). 11001527: the simulated
# operator forced a quorum on a second survivor when the first went down (its own bug).
# 13000188: after a forced quorum lost the entry that opened a session, the client took
# "unknown or expired session" for an engine error (the simulator's; it now reopens).
# 14006704, 15005574: the operator took a configuration that still had a member from before
# its removal for its re-add (the simulator's; it now also checks the address book).
for seed in 7 501687 800348 88 243 2000558 2000781 5001256 11001527 13000188 14006704 15005574; do
    res=$("$sim" --whole --seed "$seed" --quiet 2>&1)
    if grep -q ' 1 passed, 0 failed\|^1 passed, 0 failed' <<<"$res"; then
        echo "sim: regression seed $seed passes"
    else
        echo "sim: regression seed $seed FAILED: $(grep -m1 FAILED <<<"$res")"
        fail=1
    fi
done

# Open bugs (docs/simulator.md): with --rejoin-early the operator re-adds a removed member
# under its old name as soon as the leader is done, and these seeds must still show the bug.
# A member that applied the removal but not the re-add refuses the re-added member, which then
# leads: it never catches up (5001055 without any flag: n2, re-added, was elected while n5,
# frozen, missed the re-add). Its other witness, 2000661 with --rejoin-early, passes since the
# node's groups share one WAL (a term/vote is a record of the shared log, not a file of its own
# with its own fsync: fewer disk steps, so the seed takes another path); 950 seeds from 2000600
# with --rejoin-early found no new witness in the time there was. Not fixed, only unseen. The other open bug, a member
# that missed the removal electing itself with the wiped member's second vote in a term
# already led (two leaders), had its witness 2000558; since the engine holds its state per Raft
# group (issue 11) that seed, like 2000781 (the first witness of the refusal), takes another
# path and passes, and 3,100 seeds from 2000600 with --rejoin-early found no new witness of it:
# the bug is not fixed (Raft ids are hashes of names), only unseen. When a seed here passes,
# its bug was fixed: drop it here (and the operator's wait in sim/whole.c) and make it a
# regression seed.
while read -r seed flags; do
    res=$("$sim" --whole --seed "$seed" $flags --quiet 2>&1)
    if grep -q '^0 passed, 1 failed' <<<"$res"; then
        echo "sim: open bug seed $seed${flags:+ $flags} still fails: $(grep -m1 FAILED <<<"$res" | sed 's/.*ms: //')"
    else
        echo "sim: open bug seed $seed${flags:+ $flags} now PASSES: fixed? update tests/sim/run.sh"
        fail=1
    fi
done <<'LIST'
5001055
LIST

if [ "$fail" -ne 0 ]; then
    echo "sim: FAILED"
    exit 1
fi
echo "sim: ok"
