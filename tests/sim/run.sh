#!/usr/bin/env bash
# tests/sim/run.sh <outdir> - the simulator's part of `make test` (docs/architecture.md "Testing", layer 2).
#
# 1. Clean seeds: SIM_SEEDS seeds (default 3000) of the full fault swarm; the node count cycles
#    3, 5, 7 with the seed. Two halves run in parallel (make test runs on 2 cores).
# 2. Mutation test: each known bug injected through raft_config.mutation must be reported by
#    the simulator within a bounded number of seeds, which proves the checkers can fail.
# 3. Scripted membership scenarios (sim/scenario.c; issue 20): SCEN_SEEDS seeds (default 100)
#    each of join-absent, join-refused and force-phantom.
# 4. Whole nodes (halyard-sim --whole, sim/whole.c; issue 10): WHOLE_SEEDS seeds (default 800;
#    3 and 5 nodes, proxy and moved modes, the seed's own faults, the operator among them) in
#    two parallel halves, WHOLE_MOVED_SEEDS (200) in moved mode, WHOLE_SEVEN_SEEDS (60) with
#    7 nodes, WHOLE_PART_SEEDS (300) with several Raft groups per node (--partitions 0: each seed
#    picks 1, 2, 4 or 8 partitions), WHOLE_EARLY_SEEDS (100) with --rejoin-early and
#    WHOLE_PARKED_SEEDS (20) with --parked-keep and WHOLE_JOIN_SEEDS (40) with --early-join (a
#    join before the first partition map); seeds run twice must give the same trace digest;
#    each node-level mutation must be caught within its bound (five of them with 4 partitions
#    too); the regression seeds of fixed bugs must pass.
#    Then WHOLE_REPLICATED_SEEDS (40) with --durability replicated (half of them kill -9s only),
#    WHOLE_RF_CHANGE_SEEDS (20) with --rf-change, WHOLE_TX_SEEDS (40) with --tx and
#    WHOLE_PIPE_SEEDS (40) with --pipelined; and
#    WHOLE_CHUNK_SEEDS (10, twice) with snapshots of several chunks (--snapshot-chunk 512).
# 5. The membership core alone (halyard-sim --membership, sim/gossip.c; issue 14): MEMBERSHIP_SEEDS
#    seeds (default 18) and one 1,000-node seed; its regression seeds must pass; each gossip
#    mutation must be caught.
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

# pair EXPECTED "ARGS A" "ARGS B": two runs of the simulator side by side (one per core); their
# failures are printed and their counts summed into $passed and $failed. Returns 1 unless both
# ran clean and EXPECTED seeds passed.
pair() {
    local expected=$1 ra rb pid
    # shellcheck disable=SC2086 # the argument lists are split on purpose
    "$sim" $2 --quiet >"$tmp/pa" 2>&1 &
    pid=$!
    # shellcheck disable=SC2086
    "$sim" $3 --quiet >"$tmp/pb" 2>&1
    rb=$?
    wait "$pid"
    ra=$?
    cat "$tmp/pa" "$tmp/pb" | grep -v ' passed, ' || true
    read -r passed failed < <(cat "$tmp/pa" "$tmp/pb" |
        awk '/ passed, / {p += $1; f += $3} END {print p + 0, f + 0}')
    [ "$ra" -eq 0 ] && [ "$rb" -eq 0 ] && [ "$failed" = 0 ] && [ "$passed" = "$expected" ]
}

# regression MODE LABEL: each line of the input, "SEED FLAGS", run once in MODE (--whole or
# --membership), must pass; fail=1 otherwise.
regression() {
    local mode=$1 label=$2 seed flags res
    while read -r seed flags; do
        # shellcheck disable=SC2086 # the flags are split on purpose
        res=$("$sim" "$mode" --seed "$seed" $flags --quiet 2>&1)
        if grep -q '^1 passed, 0 failed' <<<"$res"; then
            echo "sim: ${label}regression seed $seed${flags:+ $flags} passes"
        else
            echo "sim: ${label}regression seed $seed${flags:+ $flags} FAILED: $(grep -m1 FAILED <<<"$res")"
            fail=1
        fi
    done
}

half=$((seeds / 2))
start=$(date +%s)
pair "$seeds" "--seeds $half --from $from" "--seeds $((seeds - half)) --from $((from + half))" ||
    fail=1
echo "sim: clean seeds $from..$((from + seeds - 1)) (3/5/7 nodes, swarm faults):" \
     "$passed passed, $failed failed in $(( $(date +%s) - start ))s"

# name, fault list, node count (0 = cycle), bound in seeds. Bounds leave room over the
# measured first detection with the black-box checker (commit-old-term: 264; forget-vote: 11;
# read-no-heartbeat: 21; read-before-noop: 5; quiesce-no-wake: 16; the rest: 1, release-unapplied
# included; with applied entries released from memory on every seed: 299, 34, 39, 3, 6).
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
quiesce-no-wake quiesce,crash 0 200
release-unapplied all 0 20
LIST

scen_seeds=${SCEN_SEEDS:-100}
for scen in join-absent join-refused force-phantom; do
    res=$("$sim" --scenario "$scen" --seeds "$scen_seeds" --from "$from" --quiet 2>&1)
    rc=$?
    grep -v ' passed, ' <<<"$res" || true
    echo "sim: scenario $scen: $(grep ' passed, ' <<<"$res")"
    [ "$rc" -ne 0 ] && fail=1
done

# ---- the membership core alone (halyard-sim --membership, sim/gossip.c; issue 14) ------------
# MEMBERSHIP_SEEDS seeds (default 18; 5, 20 and 100 nodes by seed, loss 0-5% by seed, kills,
# restarts, short and long freezes) in parallel with one 1,000-node seed; then each mutation
# must be caught within its bound (measured: 1 or 2 seeds).
gseeds=${MEMBERSHIP_SEEDS:-18}
start=$(date +%s)
pair "$((gseeds + 1))" "--membership --seeds $gseeds --from 1" \
    "--membership --nodes 1000 --seed 3 --fault-ms 5000" || fail=1
echo "sim: membership seeds 1..$gseeds (5/20/100 nodes) and one of 1000 nodes:" \
     "$passed passed, $failed failed in $(( $(date +%s) - start ))s"
# The CPU hog (--hog: every node starved again and again, stalls up to the short-freeze bound):
# 6 seeds must pass (no false DEAD, detection within the bound), and the same seeds without the
# loop-lag grace (--no-grace) must fail: what the grace buys (measured: 3 of 6 fail).
res=$("$sim" --membership --seeds 6 --from 1 --hog --quiet 2>&1)
echo "sim: membership under a CPU hog, seeds 1..6: $(grep -o '[0-9]* passed, [0-9]* failed' <<<"$res");" \
     "$(grep -o 'false suspicions after.*per node-hour)' <<<"$res")"
if ! grep -q ' 0 failed' <<<"$res"; then
    grep FAILED <<<"$res"
    fail=1
fi
res=$("$sim" --membership --seeds 6 --from 1 --hog --no-grace --first-failure --quiet 2>&1)
if n=$(grep -o 'first failure after [0-9]*' <<<"$res"); then
    echo "sim: membership under a CPU hog without the grace fails (${n#first failure after } seeds):" \
         "$(grep -m1 'FAILED' <<<"$res" | sed 's/.*): //')"
else
    echo "sim: membership under a CPU hog without the grace did NOT fail within 6 seeds"
    fail=1
fi
# Regression seeds of the membership core. 29 --nodes 100 --loss 5: n75, frozen 10 s, refuted
# an old suspicion first, so that the DEADs it read next came at the incarnation it had left and
# asked for no SYNC; it learned of n81's death (killed during its freeze) only when its probes
# came round to n81, past the detection bound. A node back from a pause past the minimum
# suspicion timeout, or told it was held dead at any incarnation, now asks for the whole view.
# 16 --nodes 100 --loss 4: a restarted node's SYNCs cut short to one (an earlier fix).
regression --membership "membership " <<'LIST'
29 --nodes 100 --loss 5
16 --nodes 100 --loss 4
LIST
for mut in no-refute no-suspect inc-reset; do
    res=$("$sim" --membership --seeds 10 --from 1 --mutation "$mut" --first-failure --quiet 2>&1)
    if n=$(grep -o 'first failure after [0-9]*' <<<"$res"); then
        echo "sim: membership mutation $mut caught (${n#first failure after } seeds):" \
             "$(grep -m1 'FAILED' <<<"$res" | sed 's/.*): //')"
    else
        echo "sim: membership mutation $mut NOT caught within 10 seeds"
        fail=1
    fi
done

# ---- whole nodes ----------------------------------------------------------------------------
# No exemption: the proxy bug and the refused re-added member once tolerated here are fixed.
wseeds=${WHOLE_SEEDS:-800}
wfrom=${WHOLE_FROM:-1}
whalf=$((wseeds / 2))
start=$(date +%s)
pair "$wseeds" "--whole --seeds $whalf --from $wfrom" \
    "--whole --seeds $((wseeds - whalf)) --from $((wfrom + whalf))" || fail=1
echo "sim: whole-node seeds $wfrom..$((wfrom + wseeds - 1)) (3/5 nodes, proxy/moved, swarm faults):" \
     "$passed passed, $failed failed in $(( $(date +%s) - start ))s"

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

# Several Raft groups per node (issue 11): the seed picks 1, 2, 4 or 8 partitions; the operator
# fails over partitions too, clients hold a session per partition, and probes check -CROSSSLOT,
# hash-tagged multi-key writes, DBSIZE, SCAN and FLUSHALL. Two halves in parallel.
pseeds=${WHOLE_PART_SEEDS:-300}
phalf=$((pseeds / 2))
pair "$pseeds" "--whole --partitions 0 --seeds $phalf --from 1" \
    "--whole --partitions 0 --seeds $((pseeds - phalf)) --from $((1 + phalf))" || fail=1
echo "sim: whole-node seeds 1..$pseeds with 1, 2, 4 or 8 partitions: $passed passed, $failed failed"

# A replication factor below the member count (5 nodes, 8 partitions, each on 3 or 2 of them):
# partitions placed, moved off removed members and forced apart from each other. Two halves in
# parallel.
rseeds=${WHOLE_RF_SEEDS:-120}
pair "$rseeds" "--whole --nodes 5 --partitions 8 --rf 3 --seeds $((rseeds / 2)) --from 1" \
    "--whole --nodes 5 --partitions 8 --rf 2 --seeds $((rseeds - rseeds / 2)) --from 1" || fail=1
echo "sim: whole-node seeds 1..$((rseeds / 2)) with --rf 3 and with --rf 2 (5 nodes, 8 partitions):" \
     "$passed passed, $failed failed"

# Replicas moving off live members: a member down for --replace-after ms (1.5 s) has its
# replicas placed elsewhere and gets a share back when it returns; and 7 nodes, where joins
# and re-adds rebalance onto the member holding fewest (issue 12).
mseeds2=${WHOLE_MOVE_SEEDS:-40}
pair "$((2 * mseeds2))" "--whole --nodes 5 --partitions 8 --rf 3 --replace-after 1500 --seeds $mseeds2 --from 1" \
    "--whole --nodes 7 --partitions 8 --rf 3 --seeds $mseeds2 --from 1" || fail=1
echo "sim: whole-node seeds 1..$mseeds2 with --replace-after 1500 and with 7 nodes (8 partitions, RF 3):" \
     "$passed passed, $failed failed"

# Snapshots paced by rebalance-bandwidth (issue 12): followers catching up and new replicas
# of moves get their snapshots in chunks held back by the node's budget, with empty chunks as
# keepalives meanwhile (raft.h struct raft_pacer); 4096 bytes/s for the single group of up to
# thousands of entries, 512 for the 8 partitions' small ones.
bseeds=${WHOLE_PACED_SEEDS:-40}
pair "$((2 * bseeds))" "--whole --snapshot-bandwidth 4096 --seeds $bseeds --from 1" \
    "--whole --nodes 5 --partitions 8 --rf 3 --replace-after 1500 --snapshot-bandwidth 512 --seeds $bseeds --from 1" || fail=1
echo "sim: whole-node seeds 1..$bseeds with paced snapshots (one group at 4 KiB/s; 8 partitions," \
     "RF 3, --replace-after 1500 at 512 B/s): $passed passed, $failed failed"
# Snapshots of several chunks (--snapshot-chunk 512: 4 to 20 chunks each) at 512 B/s: a leader
# snapshots anew more often than a transfer takes, which must keep its snapshot to the end
# (raft.c "A transfer keeps its snapshot"). Seeds 16..25: 23 of the first failed before (a
# follower restarted from byte 0 at every newer snapshot ended 870 entries behind).
cseeds0=${WHOLE_CHUNK_SEEDS:-10}
pair "$((2 * cseeds0))" "--whole --snapshot-bandwidth 512 --snapshot-chunk 512 --seeds $cseeds0 --from 16" \
    "--whole --nodes 5 --partitions 8 --rf 3 --replace-after 1500 --snapshot-bandwidth 512 --snapshot-chunk 512 --seeds $cseeds0 --from 16" || fail=1
echo "sim: whole-node seeds 16..$((15 + cseeds0)) with snapshots of several 512-byte chunks at 512 B/s" \
     "(one group; 8 partitions, RF 3, --replace-after 1500): $passed passed, $failed failed"

# Cancelled moves (--cancel, issue 12): the operator also sends HALYARD REBALANCE CANCEL (moves
# under way go back to where they started, rebalancing pauses) or RESUME in three of ten of its
# turns, and CANCEL right after each re-add (then RESUME), amid the removes, re-adds and forced
# quorums that start moves; the end checks hold.
cseeds=${WHOLE_CANCEL_SEEDS:-40}
pair "$((2 * cseeds))" "--whole --nodes 5 --partitions 8 --rf 3 --cancel --seeds $cseeds --from 1" \
    "--whole --nodes 5 --partitions 8 --rf 2 --cancel --seeds $cseeds --from 1" || fail=1
echo "sim: whole-node seeds 1..$cseeds with --cancel (5 nodes, 8 partitions, RF 3 and RF 2):" \
     "$passed passed, $failed failed"

# Parked copies' files dropped (--parked-keep, issue 11): a copy moved away and parked for the
# given time drops its snapshot file and log and starts again empty; a move back catches it up
# from the leader.
kseeds=${WHOLE_PARKED_SEEDS:-20}
pair "$((2 * kseeds))" "--whole --nodes 5 --partitions 8 --rf 3 --replace-after 1500 --parked-keep 500 --seeds $kseeds --from 1" \
    "--whole --nodes 7 --partitions 8 --rf 3 --parked-keep 0 --seeds $kseeds --from 1" || fail=1
echo "sim: whole-node seeds 1..$kseeds with --parked-keep (5 nodes RF 3 at 500 ms, 7 nodes at 0):" \
     "$passed passed, $failed failed"

# The operator re-adds a removed member under its name without waiting for every member to
# have each step (--rejoin-early): what exposed the refused re-added member and the two leaders
# of a wiped member's old vote, both fixed.
eseeds=${WHOLE_EARLY_SEEDS:-100}
res=$("$sim" --whole --rejoin-early --seeds "$eseeds" --from 2000600 --quiet 2>&1)
rc=$?
grep -v ' passed, ' <<<"$res" || true
echo "sim: whole-node seeds 2000600.. with --rejoin-early: $(grep ' passed, ' <<<"$res")"
[ "$rc" -ne 0 ] && fail=1

# A node joins at the cluster's first start, before the metadata leader writes the first
# partition map (--early-join): that map must be the bootstrap's placement (partmap.c
# first_map_members; --mutation first-map-joiner brings the old map back and is caught by 17
# of the first 20 seeds).
jseeds=${WHOLE_JOIN_SEEDS:-40}
res=$("$sim" --whole --early-join --nodes 5 --partitions 8 --rf 3 --seeds "$jseeds" --from 1 \
      --quiet 2>&1)
rc=$?
grep -v ' passed, ' <<<"$res" || true
echo "sim: whole-node seeds 1.. with --early-join (5 nodes, 8 partitions, RF 3): $(grep ' passed, ' <<<"$res")"
[ "$rc" -ne 0 ] && fail=1
res=$("$sim" --whole --early-join --nodes 5 --partitions 8 --rf 3 --seeds 10 --from 1 \
      --mutation first-map-joiner --first-failure --quiet 2>&1)
if n=$(grep -o 'first failure after [0-9]*' <<<"$res"); then
    echo "sim: whole-node mutation first-map-joiner caught (${n#first failure after } seeds)"
else
    echo "sim: whole-node mutation first-map-joiner NOT caught within 10 seeds"
    fail=1
fi

# durability: replicated (issue 17; operations.md): writes count once written, fdatasync'd
# within the second. Crashes are kill -9s (nothing may be lost) or power cuts (only writes a
# bare majority held may be lost, the simulator checks each: docs/simulator.md); and kill -9s
# alone, every check strict, with 1, 2, 4 or 8 partitions. Two halves in parallel.
dseeds=${WHOLE_REPLICATED_SEEDS:-40}
pair "$dseeds" "--whole --durability replicated --seeds $((dseeds / 2)) --from 1" \
    "--whole --durability replicated --no-power-cut --partitions 0 --seeds $((dseeds - dseeds / 2)) --from 1" ||
    fail=1
echo "sim: whole-node seeds 1..$((dseeds / 2)) with --durability replicated, and as many with" \
     "kill -9s only and 1-8 partitions: $passed passed, $failed failed"

# The replication factor changed at run time (HALYARD REPLICATION-FACTOR, partitioning.md) by
# the operator one to three times during the faults (5 nodes, 8 partitions, from RF 3).
fseeds=${WHOLE_RF_CHANGE_SEEDS:-20}
res=$("$sim" --whole --nodes 5 --partitions 8 --rf 3 --rf-change --seeds "$fseeds" --from 1 \
      --quiet 2>&1)
rc=$?
grep -v ' passed, ' <<<"$res" || true
echo "sim: whole-node seeds 1..$fseeds with --rf-change (5 nodes, 8 partitions, RF 3): $(grep ' passed, ' <<<"$res")"
[ "$rc" -ne 0 ] && fail=1

# Transactions over several keys and WATCH (--tx, sim/whole.c tx_probe_send): MULTI/EXEC writes
# three keys of one partition with one value, a transaction reading them must read one value,
# a WATCH read-modify-write of a counter never loses an update, and a transaction EXEC aborted
# leaves no trace; each key a transaction writes or reads is in the per-key linearizability
# history. One partition and 1, 2, 4 or 8, in parallel.
tseeds=${WHOLE_TX_SEEDS:-40}
pair "$tseeds" "--whole --tx --seeds $((tseeds / 2)) --from 1" \
    "--whole --tx --partitions 0 --seeds $((tseeds - tseeds / 2)) --from 1" || fail=1
echo "sim: whole-node seeds 1..$((tseeds / 2)) with --tx, one partition and 1-8:" \
     "$passed passed, $failed failed"

# Pipelined writes (--pipelined, sim/whole.c pipe_probe_send): clients also send 2-6 INCRs of a
# counter of their own in one write, which a follower forwards in batches (src/node/proxy.c
# "Batches"); across every fault each applies once and the replies keep their order. One
# partition and 1, 2, 4 or 8, in parallel.
wseeds=${WHOLE_PIPE_SEEDS:-40}
pair "$wseeds" "--whole --pipelined --seeds $((wseeds / 2)) --from 1" \
    "--whole --pipelined --partitions 0 --seeds $((wseeds - wseeds / 2)) --from 1" || fail=1
echo "sim: whole-node seeds 1..$((wseeds / 2)) with --pipelined, one partition and 1-8:" \
     "$passed passed, $failed failed"

# Seeds twice: the same trace digest (a seed replays bit for bit). 57 has the operator,
# clock steps, disk stalls and hash fields; 3 with 4 partitions writes every group's records to
# each node's one shared WAL.
for args in "42" "57" "3 --partitions 4" "7 --tx"; do
    d1=$("$sim" --whole --seed $args | grep -o 'trace digest [0-9a-f]*')
    d2=$("$sim" --whole --seed $args | grep -o 'trace digest [0-9a-f]*')
    if [ -n "$d1" ] && [ "$d1" = "$d2" ]; then
        echo "sim: whole-node seed $args replays exactly ($d1)"
    else
        echo "sim: whole-node seed $args does NOT replay: '$d1' then '$d2'"
        fail=1
    fi
done

# Node-level mutations: name, bound in seeds (measured first detection: ack-before-fsync 2 (1
# before session 16's workload: EXPIRE, READONLY, reads in MULTI), snapshot-ahead 3 (5; 2 before
# snapshots became rarer, issue 17), session-ignored 1, resend-bare 1 (3), stale-reply 97 (438
# before session 16's workload changed half the seeds' course; 161
# before the simulator's heartbeats moved to gossip's ring links and changed every seed's course; 63 before a
# deposed leader stopped answering "not applied" for a write merely replaced in its log, and 3
# before a deposed leader waited for its writes' fate: each leaves fewer writes re-sent; 25
# before disk stalls and hashes came in), apply-clock 1, session-forget 1).
while read -r name bound; do
    res=$("$sim" --whole --seeds "$bound" --from 1 --mutation "$name" \
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
stale-reply 600
apply-clock 10
session-forget 30
LIST

# The same checks with several groups per node: mutations caught with 4 partitions (measured
# first detection: 1 seed each but ack-before-fsync, 2, and snapshot-ahead, 3), each in a
# partition's group.
while read -r name bound; do
    res=$("$sim" --whole --partitions 4 --seeds "$bound" --from 1 --mutation "$name" \
          --first-failure --quiet 2>&1)
    if n=$(grep -o 'first failure after [0-9]*' <<<"$res"); then
        why=$(grep -m1 'FAILED' <<<"$res" | sed 's/.*ms: //')
        echo "sim: whole-node mutation $name with 4 partitions caught (${n#first failure after } seeds): $why"
    else
        echo "sim: whole-node mutation $name with 4 partitions NOT caught within $bound seeds"
        fail=1
    fi
done <<'LIST'
ack-before-fsync 30
snapshot-ahead 30
session-ignored 30
apply-clock 10
session-forget 30
LIST

# Regression seeds of bugs this simulator found, each fixed: they must pass (seed, then flags).
# 7: proxy.c kept retry_since_ms after a re-run forward was answered (the next forward timed
# out at once). 501687, 800348: a request that waited for a leader was forwarded with a fresh
# deadline. 88, 243: a write re-sent under the follower's session after its first copy was
# applied was refused ("READONLY disk full") and the refusal reached the client as "not
# applied".
# 2000558, 2000781: the operator re-added a removed member under its name before every member
# had the change.
# 5001256: a request re-run on a follower that then became leader got a fresh deadline
# (replica_waiter_new now keeps the first attempt's, retry_since_ms). 11001527: the simulated
# operator forced a quorum on a second survivor when the first went down (its own bug).
# 13000188: after a forced quorum lost the entry that opened a session, the client took
# "unknown or expired session" for an engine error (the simulator's; it now reopens).
# 14006704, 15005574: the operator took a configuration that still had a member from before
# its removal for its re-add (the simulator's; it now also checks the address book).
# 2000661 --rejoin-early, 5001055, 721: a member that applied a removal but missed the re-add
# refused the re-added member's connections, for good once that one led (node_member_is_peer
# now keeps removed members as peers).
# With partitions: 16 (node_cut_off judged the metadata group's quorum, not the request's
# group's: -TRYAGAIN "within request-timeout-ms" after 17 ms); 7 (FORCE-QUORUM reused a term
# a survivor had seen led, and a follower aborted on entries conflicting with its committed
# ones); 1032 (a member wiped and re-added under its name voted again in a term its old
# incarnation had voted in: two leaders); 1084 --moved (the operator wiped a member before a
# partition committed its removal: the simulator's); 40 (a removed member unaware of it kept
# leading a partition); 50 (a request answered -CROSSSLOT left its "no leader" verdict to the
# next one); 22001039 (a draining node took the partitions another node's balancer handed it,
# handed them back, and never drained). 20003400: the operator took a force for done before
# its configuration was durable (the simulator's). 23001248: a read registered for a ReadIndex
# round once a leader came counted its deadline afresh and went unanswered past it.
# 24001517 --partitions 2: FORCE-QUORUM's later forcing of a group it had found still led
# forced it after a majority (with a member re-added since) had elected another leader there,
# dropping what that majority committed. 26005855 --partitions 2: a follower whose log
# conflicted with the forced leader's kept forwarding writes under its session of the old
# history, and an MSET was answered with another write's recorded reply (an integer): its
# session is now dropped when it refuses such entries.
# Quiescing on (the server's quiesce-ticks 4) with peer.c's silence detector modelled:
# 26005801 --partitions 0 left a partition leaderless for 9 s with quiescing on while the
# simulator had no detector (before the shared log changed its draws); 26005809 and 26005877
# --partitions 0 (8 partitions) fail when the detector is taken out (the metadata group's
# replicas never converge: its quiesced followers are not told that their leader's node went
# silent) and pass with it. 31000120 --partitions 0 (and 31000091, 31000337): with quiescing
# on, a partition led by a member the metadata group had removed (unaware of it, its messages
# ignored by the others, its link up and beaconing) kept quiesced followers that never
# campaigned, so the removal never finished there (replica_wake_from_removed_leaders).
# 34019043 --nodes 5 --partitions 8: the checker counted a leader whose term never reached its
# full disk (it now counts leaders once their term is durable). 34009006 --nodes 3 --partitions
# 4: a node restarted from an old snapshot of the metadata group removed from a partition it
# led a member that had been removed and joined again (partitions now follow the address book
# only once the metadata replica is current: member.c meta_fresh). 32001631 --nodes 5
# --partitions 4: a removed member that led a two-voter partition could not commit its own
# removal because the other voter ignored it (replica.c quorum_without_removed). 40407106
# --nodes 5 --partitions 8: a client link cut dropped MULTI's +OK and +QUEUED but kept the
# connection, and EXEC's reply came after the heal (the simulator's: a cut that lost bytes now
# breaks the connection).
# 22 --rf 3 --replace-after 1500 (and 4, 10, 20, 25, 26, 29, 30, 33, 35, 37 of that campaign's
# first 40): a partition's leader removed a move's source, a member that stays, while the
# target's node was down, leaving the partition a voter short (check_voter_removal; member.c
# voter_may_go keeps such a source voting until the target votes).
# 73000035 --rf 2 --zones 2: a zone move kept the replica of a member that then died and
# dropped the live one, which FORCE-QUORUM then left alone as not named by the map (member.c
# force_candidate: a move's source still voting is forced too); and a survivor asked right after its restart, with no map applied yet,
# forced the metadata group from a reachable majority (member.c). 76000504 --rf 3 --zones 3
# --cancel: a list of log writes retried after ENOSPC wrote a term/vote already durable after a
# newer one, and the node's log was refused at its restart ("group 7's term goes down";
# wal_node.c skips term/votes not newer than the log's). 75001993 --rf 2 --zones 2: as 73000035
# for a fair-share move. 75010203 --rf 2 --zones 2: the first fix of 73000035 (the map named
# the move's source again) raced with a move that had finished. 75010117 --rf 2 --zones 2: the
# simulated operator took a FORCE-QUORUM answered "disk full ... run it again" at once for
# asked (its own bug). 76020079 --rf 3 --zones 3 --cancel (on d2c1db7): with an observer in the
# cluster no partition counted as settled (the observers' learners), finished moves stayed under
# way, and the moves behind them (two partitions sharing zone z0) never started (partmap.c
# group_settled); 78000034 --partitions 16 --rf 3: with that fixed, an observer's copy was
# parked as moved away (replica.c node_observes). 950000197 --rf 3 --replace-after 1500 (found
# by this session's campaign): FORCE-QUORUM forced a move's source (n2) after the map's replica
# n5 had been forced and had removed it: two histories of one partition (member.c
# force_candidate leaves such a source alone while a voter the map names is up).
# 75004513 --rf 2 --zones 2: a partition's voter missed the move's last step (drained and
# stopped), the other voter was removed from the cluster and its messages were ignored, so the
# partition never led again (replica.c removed_sender_needed). 75004646 --rf 2 --zones 2:
# FORCE-QUORUM marked a group led with a working majority, forced later once the node, cut
# off, saw it step down (member.c).
# 960000259 --nodes 5 --partitions 16 --rf 3 (campaign of 2026-12-05): the checker's; the
# operator re-added two members lost to a forced quorum, each re-add waiting for its 16
# partitions' moves, past the quiet time, and the end check caught the metadata group between
# a commit and the heartbeat that carries it (the end checks now wait, up to 30 s, for the
# operator's work to finish). 960000605 --nodes 5 --partitions 16 --rf 3: a quiesced follower
# woken by a heartbeat the network delivered after the quiesce round campaigned once the
# leader had quiesced (raft.c sent_before_quiesce_round). 24 --durability replicated: a
# follower that lost acknowledged entries to a power cut was never caught up by its leader
# (raft.c follower_lost_entries). 54 --durability replicated --nodes 3 --partitions 2 --moved:
# the checker's (a member holding an entry in memory only was counted as holding it). 1294 and
# 1490 --durability replicated: the simulator's (the operator's change blocked after a
# documented loss, whose remedy is not simulated).
# 960001017 --nodes 5 --partitions 16 --rf 3: a wiped node re-added as an observer replayed its
# old removal first and parked, on that stale address book, copies its leaders had just added
# as learners; they stayed empty for good (replica.c node_holds_placed_replicas, and a parked
# copy no longer moved away is read back). 960001669 --nodes 5 --partitions 16 --rf 3: a
# partition's leader removed itself while cut off and alone held Cnew; with one of Cold's
# voters lost, nobody could be elected again (raft.c self_may_campaign). 998000006 --rf-change
# (above) lowers the factor while two members lost to a forced quorum are still in the cluster
# again: placement.c drops the replicas on members seen down first. 18 --nodes 5 --partitions 8 --rf 3
# --replace-after 1500 --snapshot-bandwidth 512 (issue 17, with followers' acknowledgements
# coalesced per group commit): a move's source led for the 8 s of the new replica's paced
# snapshot, and members not holding the partition dropped the hint naming it, outside the map,
# for a replica that answered -MOVED to it again (partmap.c leader_hint_vouched).
# 296 --nodes 5 --partitions 16 --rf 3 --replace-after 1500 --snapshot-bandwidth 512: a new
# replica's 2.4 KB snapshot never went: the node's pacer let a chunk go only once its credit
# held the chunk's whole size, and another partition's smaller chunks took the credit first as
# it built up (raft.c raft_pacer_take: a chunk now goes whenever nothing is owed, the longest
# waiting first; the unit test test_pacer_does_not_starve_a_large_chunk guards it: since the end
# checks wait for paced transfers under way, below, the seed passes with the old pacer too).
# Session 17: with a suspected leader's nudge naming the quiesced round (raft.c nudge_leader)
# the seed failed again, a move's learner of group 8 empty from 42.9 s to the end: n2's pacer
# queue, in which five transfers to the re-added n5 lost their place each time their leaders
# snapshotted anew (every 2 to 3 s); a restarted transfer now keeps its place (raft.c
# send_snapshot_chunk; test_new_snapshot_keeps_its_transfers_place_at_the_pacer).
# 128 --nodes 5 --partitions 8 --rf 3 --replace-after 1500 --snapshot-bandwidth 512: the
# checker's: three transfers (9 KB at 512 B/s) asked for late could not end within the quiet
# time; the end checks now wait for paced transfers under way as long as their bytes need at
# the node's rate, and 2 s more. 995300138 --nodes 5 --partitions 8 --rf 3 --replace-after 1500 (found by a
# campaign on c43b7a6; it passes on later builds, whose runs differ, and fails there without
# the fix): FORCE-QUORUM forced n2's copy, which its group had removed and the map named
# again as a move's target, while n4, the survivor of the group's real configuration, was up:
# two histories of one partition (member.c force_candidate,
# partmap_move_target_with_origin_up). 1411000321 --nodes 5 --partitions 8 --rf 2 --zones 2
# (this branch's campaign, on the first form of that fix): it counted a move's source that had
# left the group (n5) as the origin member up, so nobody forced the partition whose other
# voter was lost; only origin members the map still names count now.
# 1464000047 --nodes 5 --partitions 8 --rf 3 --early-join --fault-ms 20000 --quiet-ms 12000
# (the sim14 campaign; session 14): not linearizable. A deposed leader told a client "TRYAGAIN
# ... not applied" as soon as the next leader's entries replaced its write in its own log, but
# another member still held the write and a later leader committed it (Raft's Figure 8): the
# INCR was applied, the client counted it as not (replica.c: only a different entry committed
# at the index decides "not applied" now).
# 1463000086 --nodes 5 --partitions 16 --rf 3 --fault-ms 20000 --quiet-ms 12000 (the sim14
# campaign; session 15): partition 6 never led again after a forced quorum. n3 and n4 were lost
# mid-move (n5 the source, n1 the target, four voters); FORCE-QUORUM on n1 left the partition
# alone because n1 still named n5, which had stepped down by check-quorum 190 ms before, as a
# reachable leader; n5, asked later, left it to n1, the map's replica (member.c: a leader heard
# within an election timeout without a reachable majority now defers the group, and its
# heartbeats in the same term do not call the force off).
# 693 --nodes 5 --partitions 8 --rf 3 (and 71 --rf 3 --zones 3 above): leaderships handed round
# in cycles while every node balanced on its own partial view (RF below the member count); the
# metadata leader plans alone now (balance.c), and the end checks fail a run whose leaderships
# never settle or end outside their fair share +-1 (session 16).
# 7 --nodes 5 --partitions 8 --rf 3 --rf-change (run.sh's --rf-change range, on branch bal16):
# RF 3 lowered to 2 while n1 was lost and the metadata leader's link to n2 closed a moment; a
# partition on n1, n2, n3 dropped n2 and kept the dead n1, and never led again. Placement now
# drops the replica of the member down longest first (partmap.c down_longest_first).
# 1562500071 --nodes 5 --partitions 8 --rf 3 --replace-after 1500 --snapshot-bandwidth 512
# --fault-ms 20000 --quiet-ms 12000 (the sim15 campaign; session 16): after the faults the
# metadata group changed leaders 19 times while n3, removed but running as its partitions moved
# off it, sent pre-votes. Each one, refused, woke the quiesced followers, whose nudge to their
# leader was ignored when the leader had their answers to its quiesce round and had not yet
# quiesced: it quiesced, they stayed awake hearing nothing and campaigned (raft.c
# wake_by_message names the round it woke from, and such an answer no longer counts). 12
# --nodes 5 --partitions 8 --rf 3: n4 removed, added back under its name, then elected leader
# of the metadata group (a removed member re-added votes and campaigns again; unit test
# test_removed_then_readded_server_campaigns_again).
# 1608000001 --nodes 7 and 1612000006 --nodes 5 --partitions 8 --rf 3 --replace-after 1500
# --snapshot-bandwidth 512 (session 16's campaign, on the first binary with TTL probes): the
# simulator's: a TTL probe's key expired 0.1 s before the end and the leader's deletion entry was
# caught committed on the leader only by the end checks (the last TTL now runs out 3 s before the
# end by every clock).
# 1605000176 --nodes 5 --partitions 8 --rf 2 --zones 2 --fault-ms 20000 --quiet-ms 12000 (the same
# campaign): the simulator's: n3, drained by the operator, led a group again when its exit event
# came, so the exit was skipped and never armed again (server.c's cron looks at every tick): n3
# drained for good, refusing the leadership of two partitions whose other voter, n2, was a
# removed member handing them over; they never moved off n2 and the operator's removal never
# ended.
# 5124 --nodes 6 --partitions 8 --rf 2 --zones 2 (a drain that moves the node's replicas off
# first, 2026-12-06): n3, leaving, refused the leadership of a partition whose other voter was
# removed n6 handing it over, and the partition never moved (replica.c: a leaving node takes
# leaderships). 66 (default flags): the last chunk of a snapshot received to disk hit ENOSPC,
# which stops the node (node_fatal): the simulator crashes it there instead of aborting itself.
# 1662000263 --nodes 5 --partitions 8 --rf 3 --replace-after 1500 --snapshot-bandwidth 512
# --fault-ms 20000 --quiet-ms 12000 (the sim16 campaign, on 634359d; it passes on later builds,
# whose course differs): the class of 296 above. Group 2's leader n3 snapshotted every 1.6 s
# during the faults, and each new snapshot sent its transfers to n1 and n4 (7.6 to 10.7 KB, one
# chunk each) to the back of n3's pacer queue; n1's went never, and it ended 1,142 entries
# behind. 634359d with the pacer fix alone passes it.
# 1715000010 --nodes 3 --partitions 1 --durability replicated --fault-ms 20000 --quiet-ms 12000
# (the sim17 campaign): not linearizable. n3 forwarded a client's EXPIRE k0 -1 to the leader n2,
# which committed it and lost its leadership before answering; n3, elected, proposed the write
# again under its session slot, lost its leadership too, and its replaced entry told the client
# "not applied" for a deletion that had happened (replica.c waiter_not_applied: -UNKNOWN).
# 1854000181 --nodes 5 --partitions 8 --rf 3 --fault-ms 20000 --quiet-ms 12000 (the sim18
# campaign): the simulator's. c2's link was cut while its MULTI ... EXEC was answered, and the end
# of the faults cleared the cut without breaking the connection as a heal does (bytes lost to
# a cut break a TCP stream): EXEC's array arrived as MULTI's +OK.
# 1807000263 --nodes 5 --partitions 8 --rf 3 --replace-after 1500 --fault-ms 20000 --quiet-ms
# 12000 (the sim18 campaign): partition 2's move n2 -> n4 ended with n2 removing itself, then n3
# and n5 were lost for good; the map named n2 again, so n4 deferred FORCE-QUORUM to the move's
# origin, and n2, no longer a voter of its own copy, forced nothing: the partition never led
# again and the operator's recovery never ended (partmap.c partmap_move_target_with_origin_up:
# an origin member this copy's configuration no longer holds as a voter does not count).
# 1810000247 --nodes 5 --partitions 8 --rf 3 --early-join --fault-ms 20000 --quiet-ms 12000 (the
# session-18 campaign): the operator drained n2 at 202 ms, before the first map, which left n2
# out (placement leaves a member marked leaving out) unlike the groups, started on the
# bootstrap's placement: every partition of n2 moved at once. partmap.c places the first map
# over every bootstrap member. 1810000309 (the same flags and --moved): the same class.
# 1857000603 --nodes 5 --partitions 8 --rf 3 --replace-after 1500 (the session-18 campaign):
# n3, restarted with none of its metadata log applied, forced partitions moved off it from
# stale copies beside their real replicas: two histories of group 6. FORCE-QUORUM now answers
# -TRYAGAIN until the node heard the metadata leader since its start (member.c
# meta_map_current), while that group's majority is reachable.
# 1962000091 --nodes 5 --partitions 8 --rf 3 --replace-after 1500 --snapshot-bandwidth 512 (part
# 2 of that campaign): the simulator's bound. A move started at 30.1 s landed at 59.2 s (15 KB at
# 512 B/s) and the balancer handed its leadership over at 59.9 s; the run ended at the grace's
# end (62 s) with leaderships "never settled". What a paced snapshot held up gets its time after
# it lands (whole_run: paced_seen).
# 1960000267 --nodes 5 --partitions 8 --rf 3 --early-join --fault-ms 20000 --quiet-ms 12000 (part
# 2 of the session-18 campaign): n2, cut off while n5 joined, never heard the join and refused
# n5's connection; n5 then led the metadata group, the only one that could send n2 the entry
# naming it, and the join never ended. A node now admits an authenticated name it does not know
# as a guest (peer.c, node_guest_admissible; the simulator's link_allowed the same).
# 2070000034 --nodes 3 --partitions 1 --tx --moved (the session-19 campaign): the simulator's
# client. Two clients' WATCH on a leader that had just stepped down answered -TRYAGAIN (the
# versions are read on the leader, and that read failed), their pipelined GETs were answered
# once a leader was back, and both went on to EXEC with nothing watched: the same counter value
# written twice. A refused WATCH now ends the client's attempt (tx_reply).
# 2104000569 --nodes 5 --partitions 8 --rf 3 --moved (the same campaign): the simulator's client.
# A READONLY client in moved mode took each -MOVED as the end of its op and sent a new op, on a
# random key, to the node named; with 8 partitions on 5 nodes it was sent on for 8 s after the
# faults stopped and never served. A cluster client sends the same request to the node -MOVED
# names: so does the simulated one now (once; client_error).
# 2271000043 --tx --partitions 0 (the same campaign, part 2): the simulator's bound. WATCH and GET
# sent together to a follower each waited for a leader (request-timeout-ms each, one after the
# other: a follower's WATCH reads the versions on the leader); the client allowed one. It allows
# two now (tx_probe_send).
# 2254000116 --nodes 5 --partitions 8 --rf 3 (the same campaign, part 2): the engine. Asked 0.5 s
# after n3 and n4 were lost, n1 left partition 3 (n4, n1, n3) alone, since its links to them
# still looked up, and answered "-ERR this node leads a working majority; nothing to force"; the
# operator moved on for good and the partition stayed leaderless. Such a group now makes the
# answer -TRYAGAIN (member.c), and the operator asks again.
# 2300000514 --nodes 3 --partitions 1 --moved (part 3 of that campaign): the engine. Forced,
# drained, restarted and asked FORCE-QUORUM again, n3 deferred its group ("unless its leader is
# heard"), then won an election itself; the force stayed pending, and when a later network
# partition cut n3 off, it forced the group over what n1 and n2 had committed: two histories.
# A deferred force now ends when the node is elected (member_force_step).
# 2216000044 --nodes 5 --partitions 8 --rf 3 --rf-change --moved --fault-ms 20000 --quiet-ms
# 12000 (the session-19 campaign, part 2): the engine. n1, metadata leader for 0.1 s, lowered
# partition 0 (n1, n2, n3) to RF 2 by dropping n2, seen down 0.1 s in a flap, and kept n3, lost
# for good 3 s before: a new metadata leader timed every member down from its own first map,
# and the tie dropped the lower id. The partition had no live majority, n1 could not be elected
# and n2 (the older configuration, a shorter log) got no vote; the operator's recovery never
# ended. Placement now orders by the node's own down time (partmap.c down_longest_first).
# 2255000176 --nodes 5 --partitions 8 --rf 2 --zones 2 --fault-ms 20000 --quiet-ms 12000 (the
# same campaign): the engine. Partition 0 moved n1 -> n2 (two replicas, n1 and n3): n2 was
# promoted while cut off and n1 removed itself at once, a configuration (n2, n3) that needs
# both; n3 was then lost for good. n1, the longest log, was no voter of its own configuration,
# n2 deferred FORCE-QUORUM to n1, the move's origin: nothing was forced and the operator's
# recovery never ended. A voter that stays a member now leaves only once every replica the
# map wants holds the configuration that made it vote (member.c wanted_voters_have_config).
# That changed the course of 1962000091 below into a move begun at 42.7 s whose paced
# snapshot (15 KB at 512 B/s) could not land by the grace's end: such moves now get their
# bytes' time (whole_run: paced_armed_need).
# 2807000521 --nodes 5 --partitions 8 --rf 3 --replace-after 1500 --fault-ms 20000 --quiet-ms
# 12000 (session 21's campaign): the engine. A move n1 -> n2 of partition 1 had added n2 as a
# learner (the entry never reached n1); n4 and n5 were lost. FORCE-QUORUM forced n1, the move's
# source and a voter, whose forced configuration did not name n2; asked a second later, n2,
# hearing no leader, forced its learner's copy: two leaders of term 2^20 + 2. A learner now
# leaves the group to a voter of its configuration that is up and that the map places the
# partition on or the move started from (member.c force_learner_with_voter_up); n1's leader
# went on with the move and promoted n2.
# 2512000181 and 2479000111 --nodes 5 --partitions 8 --rf 3 --replace-after 1500
# --snapshot-bandwidth 512 --fault-ms 20000 --quiet-ms 12000 (the session-20 campaigns; session
# 21): "the operator's work is still under way" 30 s after the quiet time. The engine: a
# partition's leader spent 8 to 11 s of its 512 B/s on a snapshot for the member the operator
# was removing (a voter still, waiting longest at the pacer) while the move's target, which the
# removal waited for, waited behind it (raft.c raft_snapshot_yield, set by member.c for servers
# the map no longer places). And the simulator's bound: an observer's re-add needs every
# partition's snapshot at the leaders' paced rate, 25 KB from one node in 2479000111, more
# than the 30 s grace; the grace now adds the time the busiest node's pacer spent on the
# bytes it let go after the quiet time (whole_run: paced_busy_ms, at most the grace again).
# 2512000112 (the same campaign, the same flags) passes on later builds; kept.
# 2756000029 --nodes 5 --partitions 16 --rf 3 --moved --fault-ms 20000 --quiet-ms 12000 (session
# 21's campaign; fails on session 20's binary too): the simulator's operator. After a forced
# quorum it removed n1, a survivor that refused the forced entries, before n2 and n5, lost for
# good and still two of the metadata group's five voters: n3 and n4 were two of the four left,
# and the metadata group never led again. The lost members go first now (rejoin_next), as
# operations.md says.
# 2960000222 --nodes 5 --partitions 8 --rf 3 --early-join --fault-ms 20000 --quiet-ms 12000
# (session 21's campaign, with the scatter-gather reads of scatter.c; main's course before them
# passes): the simulator's checks. n3's replica of group 1 refused the entries of a leader forced
# on n1; the operator removed n3 to add it back afresh, and n3 crashed before it was wiped. Back
# up, it applied its snapshot of the history the force left behind (index 98), and the digest
# check compared it with the forced history's. A replica seen refusing, or ahead of a forced
# leader, is no longer compared until it is wiped, restarts included (whole.c diverged).
# 3201000759 --partitions 1 --moved --fault-ms 20000 --quiet-ms 12000 (session 22's campaign):
# the engine's answer. n2, n3 and n4 were lost for good; the survivors were n5, a voter, and
# n1, an observer (a learner of the one group) with as long a log, which the operator chose.
# n1 left the group to n5 (member.c force_learner_with_voter_up, session 21) and answered
# "nothing to force", and the operator asked n1 again for good. The answer is now -TRYAGAIN
# naming the voter ("run FORCE-QUORUM on n5"), and the operator runs it there.
# 3900001135 --nodes 5 --partitions 8 --rf 3 --replace-after 1500 --snapshot-bandwidth 512
# --fault-ms 20000 --quiet-ms 12000 (session 22, pace22's campaign): the simulator's operator.
# n2 forced the five groups it saw leaderless at 10.6 s; groups 3 and 6 still had a leader
# then and lost it with n1 and n3. n5, asked later, answered "nothing to force" while n1 and
# n3 still looked alive to it, n4 (an observer) named n2, and having asked every survivor once
# the operator asked nobody again: two partitions leaderless to the end. Every survivor is
# asked again, a round at a time, while a partition stays leaderless (ev_force_rf), as
# operations.md tells an operator to.
# 3613000002 --nodes 5 --partitions 8 --rf 3 --cancel --fault-ms 20000 --quiet-ms 12000
# (session 22's campaign, on the pacer fixes' course): the simulator's operator. n3, re-added
# after a forced quorum, stayed a voter of partition 1, which the map had moved off it: the
# move's last step waits until every replica the map wants holds the configuration, one of
# them n4, lost, which the operator re-adds only after n3's re-add ends. A re-added member
# that holds more than the map gives it has finished its re-add (partitions_done).
# 3212000067 --nodes 5 --partitions 8 --rf 3 --replace-after 1500 --snapshot-bandwidth 512
# --fault-ms 20000 --quiet-ms 12000 (the lead's session-22 campaign, on 539a444): the engine.
# Group 3's voter n3 got its snapshot from n5 too late for the end ("replicas of group 3 did not
# converge"). A duplicate chunk, asked for by an earlier answer while the last one was on its
# way, had taken n5's pacer claim and its transfer then ended; when the claim lapsed, a
# yielding chunk (group 1 to n3, which the map was moving off, down then) stepped first and
# took 4.6 KB, 9 s of the budget, ahead of the kept replicas' chunks told to come back at that
# moment. A claim is now dropped when its holder stops waiting (raft_pacer_forget), a
# yielding chunk also waits for every refused chunk that does not yield (struct raft_pacer
# firm_until), and a follower seen down is sent keepalives, no bytes (send_snapshot_chunk).
# 3312000198 (the same campaign, the same flags): the engine. Partition 5 (n1 n2 n3, led by n3)
# had n1 removed by the operator, silent, and n2 back from a crash needing a snapshot; the map
# moved both off, so n2's 1.1 KB yielded at n3's pacer behind two moves' snapshots, and the
# partition, without a majority until n2 held it, served no write for 10.6 s: c1 was not
# served within 8 s after the faults. A voter the majority needs no longer yields (raft.c
# snapshot_yields: fewer than a majority of voters are not sent a snapshot and heard).
# 3507000018 --nodes 5 --partitions 8 --rf 3 --replace-after 1500 --fault-ms 20000
# --quiet-ms 12000 (session 22's campaign, on 4428d91): the engine. Two forced histories of
# partition 4: FORCE-QUORUM on n2 deferred group 5 (its leader n5 heard, no majority reachable:
# n2's links to n3 and n5 flapped); n5 went on leading it with n3 for 1.1 s, its heartbeats
# reaching n2 between the flaps, and once they stopped n2 forced the group. A deferred group
# whose leader is still heard twice an election timeout after the ask (past check-quorum's
# window), or that this node still leads by then, is not forced (member_force_step).
# 3701001172 --nodes 3 --partitions 4 --fault-ms 20000 --quiet-ms 12000 (session 22's campaign;
# fails on 16f7cea too): the engine. n3, re-added as an observer, survived n1 and n2, the
# partitions' only voters; FORCE-QUORUM there forced the metadata group only, as the map
# names no observer for a partition, and the operator, told to remove the lost members,
# waited for ever for them to leave partitions nobody led. An observer's copy of a partition
# none of whose voters nor map replicas is up is forced (member.c observer_copy_holder_up).
# 4000030438 --nodes 3 --partitions 4 --pipelined --fault-ms 20000 --quiet-ms 12000 (session
# 23's campaign; fails on 709e825 and d76bce8, passes on later heads by another course): the
# engine (raft.c). n2, removed, wiped and added back after the forced quorum it had led,
# installed a snapshot at index 66 of 106 whose configuration made it the only voter (the
# forced one); its leader n1 cut off, it elected itself alone and committed entry 67 over
# the majority's. A server behind the commit index its leader sent does not campaign
# (self_may_campaign; test_raft test_server_behind_its_leaders_commit_does_not_campaign).
# 4100027652 --nodes 3 --partitions 8 --pipelined --fault-ms 20000 --quiet-ms 12000 (session
# 23's campaign; fails on 709e825, passes with this on 709e825): the simulator's check. c1's
# two pipelined INCRs went with n3's crash unanswered; the next batch through n1 answered
# 55..60, and then 63: the two, forwarded before the crash, applied after it. An INCR of
# unknown fate may apply later than INCRs sent after it, once (pipe_reply: pipe_unknown).
# 4100008773 --nodes 5 --partitions 8 --fault-ms 20000 --quiet-ms 12000 (session 23's
# campaign; fails on 709e825 and on 24aca72): the simulator's operator. n4 refused n2's forced
# entries of partition 0 (it had committed entry 19; n2 was forced from 18) only after the
# operator had looked for refusing survivors, and the removal of n1 waited for n4 to hold
# the configuration for good. Refusing survivors are looked for at every step (ev_oper_step).
# 4100023426, 4100037408 (session 23's campaign A), 4300006666, 4400009476 (campaign B) --nodes 3
# --partitions 1 --snapshot-bandwidth 512 --snapshot-chunk 512 --fault-ms 20000 --quiet-ms 12000
# (4100037408 fails on 709e825 too): the engine (member.c). The operator removed n2 while n3,
# the only other voter left, was still being sent a snapshot of 3 to 12 KB at 512 B/s: the
# two-voter group committed nothing until it landed, 6 to 20 s, and clients went unserved. A
# voter its leader is sending a snapshot does not count as reachable for REMOVE's guard
# (removal_loses_quorum); the operator's REMOVE is refused and retried.
# 4300003857 --nodes 5 --partitions 1 --snapshot-bandwidth 512 --snapshot-chunk 512 (campaign B;
# fails on 709e825 too): the simulator's end bound. n2 sent two 11.9 KB snapshots at 512 B/s
# from 16.3 s to 62.6 s; the time given to paced snapshots was capped by the grace as it stood
# at the quiet time's end (62 s), not as it grew with the bytes sent since (whole_run).
# Four seeds of session 23's campaign A that fail on d76bce8 and pass on 289384b only by another
# course; each passes on d76bce8 with the fix named (checked by replaying them there), and the
# engine's two have unit tests that fail without their fix:
# 4100010447 --nodes 5 --partitions 8 --rf 3 --rf-change: the engine (member.c). Partition 4 on
# n2 n4 n5, n2 lost for good; the map at replication factor 2 kept n2 and n5, and n4, leading,
# removed itself: no leader ever again. A reachable voter leaves a partition only if the voters
# left have a majority its leader can count on (reconcile_partition; test_proxy
# test_leader_keeps_its_vote_while_the_voters_left_lack_a_majority).
# 4100015180 --nodes 5 --partitions 8 --rf 3 --replace-after 1500 --snapshot-bandwidth 512
# --snapshot-chunk 512: the engine (raft.c). Partition 2's majority waited for voter n5's 3 KB
# snapshot, which alternated at the pacer with the move's learner n1: 13 s without a commit. A
# learner's chunks yield while its group's majority waits for a voter's snapshot
# (snapshot_yields; test_raft test_learner_snapshot_yields_to_a_voter_the_majority_needs).
# 4000029176 (same flags): the simulator's end bound. A move's paced transfer that began after
# the time given at the end (a move slot freed late) did not extend the grace; now the last
# paced bytes after the end do (whole_run).
# 4000031990 (same flags): the simulator's end bound. A drained node's rolling restart came 28 ms
# before the end checks, before it heard the commit of what it held; the end now waits for a
# restart due and W_END_SETTLE_MS after the last one (restart_busy).
# 4800001053 --nodes 5 --partitions 1 --snapshot-bandwidth 512 --snapshot-chunk 512 (session 24's
# campaign D, on 6d896db): the engine (member.c). n2, removed while cut off, never heard the
# entry; with one group it never asked whether it had been removed (member_removal_step
# returned at once), and its client c4 got -TRYAGAIN per request from 20 to 29 s, until the
# operator stopped n2. It asks now, after 3 election timeouts without a leader (10 before), and
# sends its clients on with -MOVED (test_replication_factor.py
# test_removed_member_of_one_group_that_missed_it_sends_its_clients_on). Passes on the fix by
# another course too.
# 4800001491 --nodes 5 --partitions 8 --rf 3 --replace-after 1500 --parked-keep 500 (campaign D,
# on 6d896db; fails on 0504da7 too): the engine (replica.c). n4 and n5, cut off from the
# metadata group with map epoch 1 and a HY.LEADERS report "partition 0 settled at epoch 1", were
# added to partition 0 by epoch 2's move (two of its three voters, the majority that committed
# it), then parked their copies on the stale map and report and dropped their logs: no leader
# ever again. A copy that took a configuration after the report does not park on it
# (settled_cfg_index). Found and traced by a helper; no unit test yet. Also: the mutation
# ack-before-fsync's batch copy read a NULL snapshot (one installed from chunks stored as they
# came) once a course change made a seed install one (sim/whole.c batch_clone).
# 4800006646 --nodes 3 --partitions 1 --snapshot-bandwidth 512 --snapshot-chunk 512 (campaign D,
# on 6d896db; fails on 0504da7 too): the engine (member.c reconcile_group). HALYARD REMOVE n1
# was accepted while n1 was down (an unreachable voter may always go); n1 came back before the
# removal was made, and the leader took it out with n3, the other voter left, still 5 KB into a
# paced snapshot: nothing committed for 10 s. The metadata group's (and a single group's)
# removal of a reachable voter is held while the voters left lack a majority, as a partition's
# is. Traced and fixed by a helper on 6d896db (the trace is the failing one up to the removal,
# which is held); passes on d91b079 by another course; test_proxy
# test_removal_held_while_the_voters_left_lack_a_majority fails without the fix.
# 4700009557 --nodes 5 --partitions 8 --rf 3 --replace-after 1500 --snapshot-bandwidth 512
# --snapshot-chunk 512 (campaign D, on 6d896db; fails on 0504da7 too): the engine (replica.c
# node_receive). n2 led partition 2 with n3, far behind and waiting 17 s for a paced snapshot,
# and n5, removed from the cluster, which held every entry and answered n2 all along; n2
# dropped n5's answers as a removed member's (a reachable majority without it: n2 and n3), and
# no write committed from 15.3 s to 32.7 s. A removed member's answers to this node's own
# leadership in its term reach Raft (removed_sender_needed). Traced and fixed by a helper
# (with the fix switched on at 20 s, the trace is sim_d's up to then and the partition commits
# at once); passes on d91b079 by another course; test_proxy
# test_leader_counts_a_removed_voters_acks fails without the fix.
# 5100001862 --nodes 3 --partitions 1 --durability replicated (campaign F, on 57a22d6; fails on
# 0504da7 too): the simulator's check. Power cuts of all three nodes within 0.6 s lost the
# entry that opened c1's session (the loss --durability replicated documents), and the retry
# of its request was answered "unknown or expired session; not applied", which the client took
# for an unexpected error; as after a forced quorum, it now opens a new session (client_error).
# 5200012347 --nodes 5 --partitions 8 --rf 3 --replace-after 1500 --snapshot-bandwidth 512
# --snapshot-chunk 512 (campaign F, on 57a22d6; fails on d91b079, passes on 6d896db by another
# course): the simulator's bound this session added (the last paced bytes extend the grace, up
# to a hard end) was 3 graces past the quiet time's end: the operator's paced re-adds ended at
# 94.9 s and the rebalancing after them moved leaderships until 119.2 s, 2.8 s before it. Now 4.
# 5300006629 --nodes 5 --partitions 1 --snapshot-bandwidth 512 --snapshot-chunk 512 --moved
# (session 25's campaign, on 417221e): the simulator's end. n4's paced snapshot to n1 ended
# 12 ms before the quiet time's end, n1 still installing it; the end checks ran at once (no
# transfer under way) and found n1 behind. A snapshot chunk sent within W_END_SETTLE_MS of the
# end now makes the checks wait as for a paced snapshot under way (chunk_recent).
# 5400029440 --nodes 5 --partitions 8 --rf 3 --replace-after 1500 --parked-keep 500 (session
# 25's campaign, on 417221e; fails on 8d1d6c8 too): the engine, safety. n1, moved off partition
# 0 at map epoch 2 and named again by epoch 3's move from n3, was asked FORCE-QUORUM and forced
# its copy from before its removal; n3, the move's source, was asked a second later and forced
# its own: both committed entry 16 of the partition. A copy older than the move (it lacks a
# voter the move started from) now leaves the group to the source while the source is up and a
# voter of its configuration (partmap.c partmap_move_target_with_origin_up); test_proxy
# test_force_quorum_target_ignores_an_origin_that_removed_itself fails without it.
# 5400048030 --nodes 5 --partitions 8 --rf 3 (session 25's campaign, on 417221e; passes on the
# head by another course): the simulator's recovery check. n1 acknowledged entry 17 of term 4
# (it had led term 4), stopped on a full disk and recovered a snapshot at 17 of term 5 from a
# later leader; a snapshot holds committed entries only, so it covers what was acknowledged at
# its index whatever that entry's term (whole.c check_recovery). Passes on 417221e with it.
# 5300028347 --nodes 5 --partitions 8 (session 25's campaign, on 417221e; passes on the head
# by another course): the simulator's operator. n4 refused the entries n2 was forced with in
# partitions 3 and 5 and stayed a learner there; those two partitions never settled, held
# rebalance-max-moves, and the re-add of lost n5 never reached the other six: the operator
# waited for it, n4's removal behind it. With a refusing survivor still to remove, a re-add is
# done once the member is back in the metadata group (whole.c refuser_pending; operations.md).
# 5500000544 --nodes 5 --partitions 8 --rf 2 --moved (session 26's campaign, on 203d3fd): Raft,
# safety. n4, wiped and re-added, held a snapshot of partition 0 from before its re-add (a
# committed configuration without it) and voted for n2, whose copy, removed from the group at
# map epoch 3, still counted n4's old incarnation as a voter: n2 led term 6 beside the real
# leader. A server now votes only while its configuration lists it or drops it uncommitted
# (raft.c self_may_vote); test_raft test_server_without_configuration_grants_no_vote fails
# without it.
# 6000013082 --nodes 3 --partitions 1 --durability replicated (session 26's campaign, on
# bdee12f; fails on 203d3fd too): the simulator's end. Power cuts took committed entries from n1
# and then n3 (operations.md's documented loss of `replicated`); n2 refused every leader's
# entries from term 4 on and n1 those of n3's term 10, so n3 led with nothing committed and
# its clients were not served. The remedy (remove such members, add them back afresh) is not
# simulated: clients are not held to the served bound while a group is so stuck after a
# documented loss (whole.c stuck_after_loss).
# 5900024262 --nodes 3 --partitions 1 --durability replicated (session 26's campaign, on
# bdee12f; fails on 203d3fd too): the simulator's digest check. Power cuts took committed
# entries 360 and 444 (the documented loss), two logs were repaired, and n2, leading term 4,
# reached applied index 450 after a replica still on term 3's history had recorded its digest
# there. Digests are no longer compared in a group after a documented loss in it (rc->lost);
# the end's comparison still covers the members that do not refuse the leader.
regression --whole "" <<'LIST'
7
501687
800348
88
243
2000558
2000781
5001256
11001527
13000188
14006704
15005574
2000661 --rejoin-early
5001055
721
20003400
23001248
16 --partitions 4
7 --partitions 8
1032 --partitions 8
1084 --partitions 8 --moved
40 --partitions 4
50 --partitions 8
22001039 --partitions 8
24001517 --partitions 2
26005855 --partitions 2
26005801 --partitions 0
26005809 --partitions 0
26005877 --partitions 0
31000120 --partitions 0
31000091 --partitions 0
31000337 --partitions 0
34019043 --nodes 5 --partitions 8
34009006 --nodes 3 --partitions 4
32001631 --nodes 5 --partitions 4
40407106 --nodes 5 --partitions 8
1873 --nodes 5 --partitions 8 --rf 3 --fault-ms 20000 --quiet-ms 12000
472 --nodes 5 --partitions 8 --rf 3 --fault-ms 20000 --quiet-ms 12000
50000155 --nodes 5 --partitions 8 --rf 3 --fault-ms 20000 --quiet-ms 12000
50000614 --nodes 5 --partitions 8 --rf 3 --fault-ms 20000 --quiet-ms 12000
50001013 --nodes 5 --partitions 8 --rf 2
50001004 --nodes 5 --partitions 8 --rf 2
52003851 --nodes 5 --partitions 8 --rf 3
52003565 --nodes 5 --partitions 8 --rf 2
53000732 --nodes 5 --partitions 8 --rf 3 --fault-ms 20000 --quiet-ms 12000
52003536 --nodes 5 --partitions 8 --rf 2
58000274 --nodes 5 --partitions 8 --rf 3 --fault-ms 20000 --quiet-ms 12000 --moved
58005173 --nodes 5 --partitions 8 --rf 3 --fault-ms 20000 --quiet-ms 12000
72000040 --nodes 7 --partitions 8 --rf 3 --fault-ms 20000 --quiet-ms 12000
71000009 --nodes 5 --partitions 8 --rf 3 --fault-ms 20000 --quiet-ms 12000 --moved
71 --nodes 5 --partitions 8 --rf 3 --zones 3
693 --nodes 5 --partitions 8 --rf 3
7 --nodes 5 --partitions 8 --rf 3 --rf-change
10 --nodes 5 --partitions 8 --rf 3 --zones 3
94 --nodes 5 --partitions 8 --rf 3 --zones 3
130 --nodes 5 --partitions 8 --rf 3 --zones 3
6 --nodes 5 --partitions 8 --rf 2 --zones 2
73000035 --nodes 5 --partitions 8 --rf 2 --zones 2
76000504 --nodes 5 --partitions 8 --rf 3 --zones 3 --cancel
76020079 --nodes 5 --partitions 8 --rf 3 --zones 3 --cancel
78000034 --nodes 5 --partitions 16 --rf 3
75001993 --nodes 5 --partitions 8 --rf 2 --zones 2
75004513 --nodes 5 --partitions 8 --rf 2 --zones 2
75004646 --nodes 5 --partitions 8 --rf 2 --zones 2
75010203 --nodes 5 --partitions 8 --rf 2 --zones 2
75010117 --nodes 5 --partitions 8 --rf 2 --zones 2
5 --nodes 7 --partitions 8 --rf 3 --zones 3
22 --nodes 5 --partitions 8 --rf 3 --replace-after 1500
950000197 --nodes 5 --partitions 8 --rf 3 --replace-after 1500
960000259 --nodes 5 --partitions 16 --rf 3
960000605 --nodes 5 --partitions 16 --rf 3
24 --durability replicated
54 --durability replicated --nodes 3 --partitions 2 --moved
1294 --durability replicated
1490 --durability replicated
998000006 --nodes 5 --partitions 8 --rf 3 --rf-change
960001017 --nodes 5 --partitions 16 --rf 3
960001669 --nodes 5 --partitions 16 --rf 3
18 --nodes 5 --partitions 8 --rf 3 --replace-after 1500 --snapshot-bandwidth 512 --fault-ms 20000 --quiet-ms 12000
296 --nodes 5 --partitions 16 --rf 3 --replace-after 1500 --snapshot-bandwidth 512
128 --nodes 5 --partitions 8 --rf 3 --replace-after 1500 --snapshot-bandwidth 512
995300138 --nodes 5 --partitions 8 --rf 3 --replace-after 1500
1411000321 --nodes 5 --partitions 8 --rf 2 --zones 2
1464000047 --nodes 5 --partitions 8 --rf 3 --early-join --fault-ms 20000 --quiet-ms 12000
1463000086 --nodes 5 --partitions 16 --rf 3 --fault-ms 20000 --quiet-ms 12000
1562500071 --nodes 5 --partitions 8 --rf 3 --replace-after 1500 --snapshot-bandwidth 512 --fault-ms 20000 --quiet-ms 12000
12 --nodes 5 --partitions 8 --rf 3
1608000001 --nodes 7
1612000006 --nodes 5 --partitions 8 --rf 3 --replace-after 1500 --snapshot-bandwidth 512
1605000176 --nodes 5 --partitions 8 --rf 2 --zones 2 --fault-ms 20000 --quiet-ms 12000
5124 --nodes 6 --partitions 8 --rf 2 --zones 2
66
1662000263 --nodes 5 --partitions 8 --rf 3 --replace-after 1500 --snapshot-bandwidth 512 --fault-ms 20000 --quiet-ms 12000
1715000010 --nodes 3 --partitions 1 --durability replicated --fault-ms 20000 --quiet-ms 12000
1854000181 --nodes 5 --partitions 8 --rf 3 --fault-ms 20000 --quiet-ms 12000
1807000263 --nodes 5 --partitions 8 --rf 3 --replace-after 1500 --fault-ms 20000 --quiet-ms 12000
1810000247 --nodes 5 --partitions 8 --rf 3 --early-join --fault-ms 20000 --quiet-ms 12000
1810000309 --nodes 5 --partitions 8 --rf 3 --early-join --fault-ms 20000 --quiet-ms 12000 --moved
1857000603 --nodes 5 --partitions 8 --rf 3 --replace-after 1500 --fault-ms 20000 --quiet-ms 12000
1962000091 --nodes 5 --partitions 8 --rf 3 --replace-after 1500 --snapshot-bandwidth 512 --fault-ms 20000 --quiet-ms 12000
1960000267 --nodes 5 --partitions 8 --rf 3 --early-join --fault-ms 20000 --quiet-ms 12000
2070000034 --nodes 3 --partitions 1 --tx --fault-ms 20000 --quiet-ms 12000 --moved
2104000569 --nodes 5 --partitions 8 --rf 3 --fault-ms 20000 --quiet-ms 12000 --moved
2271000043 --nodes 5 --partitions 1 --tx --fault-ms 20000 --quiet-ms 12000
2254000116 --nodes 5 --partitions 8 --rf 3 --fault-ms 20000 --quiet-ms 12000
2300000514 --nodes 3 --partitions 1 --fault-ms 20000 --quiet-ms 12000 --moved
2262000072 --nodes 5 --partitions 8 --rf 3 --replace-after 1500 --snapshot-bandwidth 512 --fault-ms 20000 --quiet-ms 12000
2260000044 --nodes 5 --partitions 8 --rf 3 --early-join --fault-ms 20000 --quiet-ms 12000
2216000044 --nodes 5 --partitions 8 --rf 3 --rf-change --fault-ms 20000 --quiet-ms 12000 --moved
2255000176 --nodes 5 --partitions 8 --rf 2 --zones 2 --fault-ms 20000 --quiet-ms 12000
2547000105 --nodes 5 --partitions 8 --rf 3 --replace-after 1500 --parked-keep 500 --fault-ms 20000 --quiet-ms 12000
2807000521 --nodes 5 --partitions 8 --rf 3 --replace-after 1500 --fault-ms 20000 --quiet-ms 12000
2512000181 --nodes 5 --partitions 8 --rf 3 --replace-after 1500 --snapshot-bandwidth 512 --fault-ms 20000 --quiet-ms 12000
2479000111 --nodes 5 --partitions 8 --rf 3 --replace-after 1500 --snapshot-bandwidth 512 --fault-ms 20000 --quiet-ms 12000
2512000112 --nodes 5 --partitions 8 --rf 3 --replace-after 1500 --snapshot-bandwidth 512 --fault-ms 20000 --quiet-ms 12000
2756000029 --nodes 5 --partitions 16 --rf 3 --fault-ms 20000 --quiet-ms 12000 --moved
2960000222 --nodes 5 --partitions 8 --rf 3 --early-join --fault-ms 20000 --quiet-ms 12000
3201000759 --nodes 5 --partitions 1 --fault-ms 20000 --quiet-ms 12000 --moved
3900001135 --nodes 5 --partitions 8 --rf 3 --replace-after 1500 --snapshot-bandwidth 512 --fault-ms 20000 --quiet-ms 12000
3613000002 --nodes 5 --partitions 8 --rf 3 --cancel --fault-ms 20000 --quiet-ms 12000
3212000067 --nodes 5 --partitions 8 --rf 3 --replace-after 1500 --snapshot-bandwidth 512 --fault-ms 20000 --quiet-ms 12000
3312000198 --nodes 5 --partitions 8 --rf 3 --replace-after 1500 --snapshot-bandwidth 512 --fault-ms 20000 --quiet-ms 12000
3701001172 --nodes 3 --partitions 4 --fault-ms 20000 --quiet-ms 12000
3507000018 --nodes 5 --partitions 8 --rf 3 --replace-after 1500 --fault-ms 20000 --quiet-ms 12000
4000030438 --nodes 3 --partitions 4 --pipelined --fault-ms 20000 --quiet-ms 12000
4100027652 --nodes 3 --partitions 8 --pipelined --fault-ms 20000 --quiet-ms 12000
4100008773 --nodes 5 --partitions 8 --fault-ms 20000 --quiet-ms 12000
4100023426 --nodes 3 --partitions 1 --snapshot-bandwidth 512 --snapshot-chunk 512 --fault-ms 20000 --quiet-ms 12000
4100037408 --nodes 3 --partitions 1 --snapshot-bandwidth 512 --snapshot-chunk 512 --fault-ms 20000 --quiet-ms 12000
4300006666 --nodes 3 --partitions 1 --snapshot-bandwidth 512 --snapshot-chunk 512 --fault-ms 20000 --quiet-ms 12000
4400009476 --nodes 3 --partitions 1 --snapshot-bandwidth 512 --snapshot-chunk 512 --fault-ms 20000 --quiet-ms 12000
4300003857 --nodes 5 --partitions 1 --snapshot-bandwidth 512 --snapshot-chunk 512 --fault-ms 20000 --quiet-ms 12000
4100010447 --nodes 5 --partitions 8 --rf 3 --rf-change --fault-ms 20000 --quiet-ms 12000
4100015180 --nodes 5 --partitions 8 --rf 3 --replace-after 1500 --snapshot-bandwidth 512 --snapshot-chunk 512 --fault-ms 20000 --quiet-ms 12000
4000029176 --nodes 5 --partitions 8 --rf 3 --replace-after 1500 --snapshot-bandwidth 512 --snapshot-chunk 512 --fault-ms 20000 --quiet-ms 12000
4000031990 --nodes 5 --partitions 8 --rf 3 --replace-after 1500 --snapshot-bandwidth 512 --snapshot-chunk 512 --fault-ms 20000 --quiet-ms 12000
4800001053 --nodes 5 --partitions 1 --snapshot-bandwidth 512 --snapshot-chunk 512 --fault-ms 20000 --quiet-ms 12000
4800001491 --nodes 5 --partitions 8 --rf 3 --replace-after 1500 --parked-keep 500 --fault-ms 20000 --quiet-ms 12000
4800006646 --nodes 3 --partitions 1 --snapshot-bandwidth 512 --snapshot-chunk 512 --fault-ms 20000 --quiet-ms 12000
4700009557 --nodes 5 --partitions 8 --rf 3 --replace-after 1500 --snapshot-bandwidth 512 --snapshot-chunk 512 --fault-ms 20000 --quiet-ms 12000
5100001862 --nodes 3 --partitions 1 --durability replicated --fault-ms 20000 --quiet-ms 12000
5200012347 --nodes 5 --partitions 8 --rf 3 --replace-after 1500 --snapshot-bandwidth 512 --snapshot-chunk 512 --fault-ms 20000 --quiet-ms 12000
5300006629 --nodes 5 --partitions 1 --snapshot-bandwidth 512 --snapshot-chunk 512 --moved --fault-ms 20000 --quiet-ms 12000
5400029440 --nodes 5 --partitions 8 --rf 3 --replace-after 1500 --parked-keep 500 --fault-ms 20000 --quiet-ms 12000
5400048030 --nodes 5 --partitions 8 --rf 3 --fault-ms 20000 --quiet-ms 12000
5300028347 --nodes 5 --partitions 8 --fault-ms 20000 --quiet-ms 12000
5500000544 --nodes 5 --partitions 8 --rf 2 --moved --fault-ms 20000 --quiet-ms 12000
6000013082 --nodes 3 --partitions 1 --durability replicated --fault-ms 20000 --quiet-ms 12000
5900024262 --nodes 3 --partitions 1 --durability replicated --fault-ms 20000 --quiet-ms 12000
6300001874 --nodes 3 --partitions 1 --durability replicated --moved --fault-ms 20000 --quiet-ms 12000
6500001439 --nodes 5 --partitions 8 --rf 3 --replace-after 1500 --parked-keep 500 --moved --fault-ms 20000 --quiet-ms 12000
6700008650 --nodes 5 --partitions 8 --rf 3 --replace-after 1500 --parked-keep 500 --moved --fault-ms 20000 --quiet-ms 12000
6700012451 --nodes 5 --partitions 8 --rf 3 --replace-after 1500 --parked-keep 500 --moved --fault-ms 20000 --quiet-ms 12000
LIST

if [ "$fail" -ne 0 ]; then
    echo "sim: FAILED"
    exit 1
fi
echo "sim: ok"
