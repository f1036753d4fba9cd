/*
 * gossip.h - halyard-sim --membership: the membership core (src/membership) alone, many nodes
 * in one process on simulated time, with message loss, delay, frozen nodes, kills and
 * restarts (docs/simulator.md "Membership mode").
 *
 *   halyard-sim --membership [--seed S | --seeds N --from S] [--nodes N] [--loss PCT]
 *               [--mutation no-refute|no-suspect|inc-reset] [--first-failure] [--quiet]
 *
 * Checks, per seed: every killed node is DEAD in every live node's view within the detection
 * bound; no node that is alive and was not frozen is ever declared DEAD (loss at or below
 * GOSSIP_SIM_LOSS_SAFE_PCT); every live node is ALIVE everywhere once the faults stop; a
 * node's own incarnation never goes back within one life. Reports detection times (p50/p99
 * of kill -> SUSPECT and kill -> DEAD over every observer) and false suspicions.
 */
#ifndef HY_SIM_GOSSIP_H
#define HY_SIM_GOSSIP_H

/* Loss up to this (per message, percent) must give no false DEAD. */
#define GOSSIP_SIM_LOSS_SAFE_PCT 5

int gossip_sim_main(int argc, char **argv);

#endif
