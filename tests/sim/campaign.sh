#!/usr/bin/env bash
# tests/sim/campaign.sh SIM BASE LOGDIR [STOPFILE]: a whole-node campaign (issue 10). Runs
# chunks of 100 seeds of SIM (a copy of build/halyard-sim, so that rebuilding does not change
# it under the campaign) over run.sh's whole-node configurations in turn, seeds BASE, BASE+100,
# ..., with --fault-ms 20000 --quiet-ms 12000, until STOPFILE (default LOGDIR/stop) exists.
# Each chunk appends a line to LOGDIR/chunks.log (time, chunk, first seed, passed, failed,
# configuration); a failed chunk's FAILED and replay lines go to LOGDIR/failures.log.
#   cp build/halyard-sim /tmp/sim && nice -n 19 tests/sim/campaign.sh /tmp/sim 6100000000 /tmp/campA &
#   awk '{p += $7; f += $9} END {print p " seeds, " f " failed"}' /tmp/campA/chunks.log
#   touch /tmp/campA/stop      # ends it after the chunk under way
# Two processes (distinct BASEs, at least 10^7 apart) keep both cores busy: about 13 seeds a
# second together on this project's two-core machine when nothing else runs.
set -u
sim=${1:?usage: tests/sim/campaign.sh SIM BASE LOGDIR [STOPFILE]}
base=${2:?usage: tests/sim/campaign.sh SIM BASE LOGDIR [STOPFILE]}
log=${3:?usage: tests/sim/campaign.sh SIM BASE LOGDIR [STOPFILE]}
stop=${4:-$log/stop}
mkdir -p "$log"
configs=(
    "--whole"
    "--whole --moved"
    "--whole --nodes 7"
    "--whole --partitions 0"
    "--whole --nodes 5 --partitions 8 --rf 3"
    "--whole --nodes 5 --partitions 8 --rf 2"
    "--whole --nodes 5 --partitions 8 --rf 3 --replace-after 1500"
    "--whole --nodes 7 --partitions 8 --rf 3"
    "--whole --snapshot-bandwidth 4096"
    "--whole --nodes 5 --partitions 8 --rf 3 --replace-after 1500 --snapshot-bandwidth 512"
    "--whole --snapshot-bandwidth 512 --snapshot-chunk 512"
    "--whole --nodes 5 --partitions 8 --rf 3 --replace-after 1500 --snapshot-bandwidth 512 --snapshot-chunk 512"
    "--whole --nodes 5 --partitions 8 --rf 3 --cancel"
    "--whole --nodes 5 --partitions 8 --rf 2 --cancel"
    "--whole --nodes 5 --partitions 8 --rf 3 --replace-after 1500 --parked-keep 500"
    "--whole --nodes 7 --partitions 8 --rf 3 --parked-keep 0"
    "--whole --rejoin-early"
    "--whole --early-join --nodes 5 --partitions 8 --rf 3"
    "--whole --durability replicated"
    "--whole --durability replicated --no-power-cut --partitions 0"
    "--whole --nodes 5 --partitions 8 --rf 3 --rf-change"
    "--whole --tx"
    "--whole --tx --partitions 0"
    "--whole --pipelined"
    "--whole --pipelined --partitions 0"
    "--whole --nodes 5 --partitions 8 --rf 2 --zones 2"
    "--whole --partitions 1 --moved"
    "--whole --nodes 5 --partitions 16 --rf 3"
)
k=0
while [ ! -e "$stop" ]; do
    cfg=${configs[$((k % ${#configs[@]}))]}
    from=$((base + k * 100))
    # shellcheck disable=SC2086 # the configuration's flags are split on purpose
    out=$("$sim" $cfg --seeds 100 --from "$from" --fault-ms 20000 --quiet-ms 12000 --quiet 2>&1)
    res=$(grep -o '[0-9]* passed, [0-9]* failed' <<<"$out" | tail -1)
    passed=$(awk '{print $1}' <<<"$res")
    failed=$(awk '{print $3}' <<<"$res")
    echo "$(date +%H:%M:%S) chunk $k from $from passed ${passed:-0} failed ${failed:-?} cfg $cfg" \
        >>"$log/chunks.log"
    if [ "${failed:-1}" != "0" ]; then
        grep -E "FAILED|replay:" <<<"$out" >>"$log/failures.log"
        [ -n "$res" ] || echo "chunk $k from $from: no result line: $(tail -3 <<<"$out")" \
            >>"$log/failures.log"
    fi
    k=$((k + 1))
done
