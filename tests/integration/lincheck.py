"""A linearizability checker for histories of SET/GET/INCR on independent keys.

The model is one integer register per key: `SET k v` stores v (acknowledged with OK),
`GET k` returns the stored value or None, `INCR k` stores value + 1 (1 on an absent key) and
returns it. Keys are checked independently, because linearizability is local (P-compositional;
Herlihy & Wing 1990): a history is linearizable iff each key's sub-history is.

Each key is checked with Wing & Gong's search (1993) with Lowe's memoization (2017): walk a
list of call and return events in time order; at a call, try to linearize that operation now
(apply it to the model; keep it if the (set of linearized ops, model state) pair is new); at a
return whose operation is not linearized yet, backtrack. The history is linearizable iff the
search gets past every return.

Operations come in three kinds of outcome (Jepsen's names):
  ok    the client got a definite answer: the op took effect exactly once, somewhere between
        its invoke and complete times, and its result is the one recorded;
  fail  the op definitely did not take effect (-TRYAGAIN, -MOVED, not sent): ignored;
  info  indeterminate (timeout, connection lost after sending, -UNKNOWN): the op may take
        effect at any time after its invoke, or never; its result is unknown. Its return
        is placed at infinity, so it never forces a backtrack, and the search succeeds once
        every determinate op is linearized. An indeterminate GET constrains nothing and is
        dropped.

Two reductions keep the search small when many ops are indeterminate, both sound for this
model with unique SET values (see _prune and the INCR ordering rule in _check_key):
  - an indeterminate SET whose value, or any value INCRs could derive from it (v .. v+m for
    m INCRs on the key), is never the result of a determinate op can be dropped: if a linearization has it take
    effect, dropping it and the indeterminate INCRs that ran on top of it before the next
    overwrite leaves every determinate op's result unchanged, since none saw those states;
  - indeterminate INCRs are interchangeable (same effect, unknown result, return at
    infinity), so they are linearized only in invoke order: a set of k of them has one
    representative instead of 2^k.

The search is bounded by `max_steps`; when the bound is hit the result says "unknown" rather
than guessing.
"""

import bisect
import itertools
import math

OK, FAIL, INFO = "ok", "fail", "info"

# The workload writes SET values that are multiples of VALUE_SPAN, so that the values INCRs
# reach on top of one SET (v, v+1, ...) never collide with another SET's: each result then
# names the write it descends from, which keeps the pruning below effective.
VALUE_SPAN = 1_000_000


class Op:
    """One client operation. `result` is the GET value (int or None) or the INCR result."""

    __slots__ = ("kind", "key", "arg", "status", "result", "invoke", "complete", "client", "node", "err", "id")

    _ids = itertools.count()

    def __init__(self, kind, key, arg=None, status=OK, result=None, invoke=0.0, complete=None, client=None,
                 node=None, err=None):
        assert kind in ("set", "get", "incr"), kind
        assert status in (OK, FAIL, INFO), status
        self.kind, self.key, self.arg = kind, key, arg
        self.status, self.result = status, result
        self.invoke = invoke
        self.complete = complete if status == OK else None
        if status == OK:
            assert complete is not None and complete >= invoke, (invoke, complete)
        self.client, self.node, self.err = client, node, err
        self.id = next(Op._ids)

    def __repr__(self):
        what = {"set": "SET %s %s" % (self.key, self.arg), "get": "GET %s" % self.key, "incr": "INCR %s" % self.key}
        res = "" if self.status != OK or self.kind == "set" else " -> %r" % (self.result,)
        end = "%.4f" % self.complete if self.complete is not None else "inf"
        extra = " [%s]" % self.err if self.err else ""
        return "<op#%d c%s %s%s %s [%.4f, %s] node=%s%s>" % (self.id, self.client, what[self.kind], res, self.status,
                                                           self.invoke, end, self.node, extra)


class Result:
    def __init__(self, ok, key=None, reason="", ops_checked=0, steps=0, detail=None):
        self.ok = ok  # True, False, or None for "unknown" (search bound hit)
        self.key = key
        self.reason = reason
        self.ops_checked = ops_checked
        self.steps = steps
        self.detail = detail or []

    def __bool__(self):
        return self.ok is True

    def __repr__(self):
        head = {True: "linearizable", False: "NOT linearizable", None: "unknown"}[self.ok]
        s = "%s (%d ops, %d steps)" % (head, self.ops_checked, self.steps)
        if self.ok is not True:
            s += " key=%r: %s" % (self.key, self.reason)
            if self.detail:
                s += "\n  " + "\n  ".join(self.detail)
        return s


def _step(op, state):
    """Applies op to the register state; returns (valid, new_state)."""
    if op.kind == "set":
        return True, op.arg
    if op.kind == "get":
        return op.result == state, state
    new = 1 if state is None else state + 1
    return (op.status == INFO or op.result == new), new


def _prune(ops):
    """Drops ops that cannot matter: failed ops, indeterminate GETs, and indeterminate SETs
    none of whose reachable values v .. v+m (m = the key's INCR count) is the result of a
    determinate op (see the module comment)."""
    kept = [o for o in ops if o.status != FAIL and not (o.kind == "get" and o.status == INFO)]
    observed = sorted(o.result for o in kept
                      if o.status == OK and o.kind in ("get", "incr") and o.result is not None)
    m = sum(1 for o in kept if o.kind == "incr")

    def seen(v):
        k = bisect.bisect_left(observed, v)
        return k < len(observed) and observed[k] <= v + m

    return [o for o in kept if not (o.kind == "set" and o.status == INFO and not seen(o.arg))]


def _check_key(key, ops, max_steps):
    ops = _prune(ops)
    n = len(ops)
    if n == 0:
        return Result(True, key, ops_checked=0)
    # Events: 2*i is op i's call, 2*i+1 its return; sorted by time, calls before returns at
    # equal times (so touching ops count as concurrent: the lenient reading).
    events = []
    for i, o in enumerate(ops):
        events.append((o.invoke, 0, 2 * i))
        events.append((o.complete if o.status == OK else math.inf, 1, 2 * i + 1))
    events.sort()
    head = 2 * n  # sentinel
    nxt = [-1] * (2 * n + 1)
    prv = [-1] * (2 * n + 1)
    last = head
    for _t, _k, e in events:
        nxt[last] = e
        prv[e] = last
        last = e
    indet = [o.status == INFO for o in ops]
    # The linearized set is kept as two bitsets, one over the determinate ops (in invoke
    # order) and one over the indeterminate ones. The memo key stores the determinate one from
    # its lowest unlinearized op up (every op below it is linearized), so keys stay a few words
    # long however long the history is.
    rank = [0] * n
    counts = [0, 0]
    for i in sorted(range(n), key=lambda i: ops[i].invoke):
        rank[i] = counts[indet[i]]
        counts[indet[i]] += 1
    # Indeterminate INCRs are taken in invoke order only (symmetry reduction).
    iincr = sorted((i for i, o in enumerate(ops) if o.kind == "incr" and o.status == INFO), key=lambda i: ops[i].invoke)
    iincr_rank = {i: r for r, i in enumerate(iincr)}
    iincr_taken = 0

    def lift(e):
        p, q = prv[e], nxt[e]
        nxt[p] = q
        if q != -1:
            prv[q] = p

    def unlift(e):
        p, q = prv[e], nxt[e]
        nxt[p] = e
        if q != -1:
            prv[q] = e

    cache = set()
    stack = []
    lin_d = lin_i = 0
    state = None
    steps = 0
    deepest = (-1, None, None, None)  # (depth, blocking op index, state, linearized ops)
    e = nxt[head]
    while True:
        steps += 1
        if steps > max_steps:
            return Result(None, key, "search bound of %d steps hit after linearizing at most %d of %d ops"
                          % (max_steps, deepest[0], n), n, steps)
        if e == -1:
            return Result(True, key, ops_checked=n, steps=steps)
        i = e >> 1
        if not (e & 1):
            op = ops[i]
            allowed = True
            if i in iincr_rank:
                allowed = iincr_rank[i] == iincr_taken
            if allowed:
                valid, new_state = _step(op, state)
                if valid:
                    nd, ni = lin_d, lin_i
                    if indet[i]:
                        ni |= 1 << rank[i]
                    else:
                        nd |= 1 << rank[i]
                    low = (~nd & (nd + 1)).bit_length() - 1
                    memo = (low, nd >> low, ni, new_state)
                    if memo not in cache:
                        cache.add(memo)
                        stack.append((i, state))
                        state, lin_d, lin_i = new_state, nd, ni
                        if i in iincr_rank:
                            iincr_taken += 1
                        lift(2 * i)
                        lift(2 * i + 1)
                        e = nxt[head]
                        continue
            e = nxt[e]
            continue
        if indet[i]:
            # Every return left from here on is at infinity: all determinate ops are placed.
            return Result(True, key, ops_checked=n, steps=steps)
        if len(stack) > deepest[0]:
            deepest = (len(stack), i, state, stack[:])
        if not stack:
            return _fail(key, ops, deepest, n, steps)
        j, state = stack.pop()
        if indet[j]:
            lin_i &= ~(1 << rank[j])
        else:
            lin_d &= ~(1 << rank[j])
        if j in iincr_rank:
            iincr_taken -= 1
        unlift(2 * j + 1)
        unlift(2 * j)
        e = nxt[2 * j]


def _fail(key, ops, deepest, n, steps):
    depth, blocked, state, linearized = deepest
    b = ops[blocked]
    detail = ["deepest partial linearization: %d of %d ops, register = %r" % (depth, n, state),
              "could not linearize before its return: %r" % (b,)]
    # The ops that could have come just before the blocked op: those overlapping it, and the
    # last few determinate ones before it.
    near = [o for k, o in enumerate(ops)
            if o is not b and o.invoke <= b.complete and (o.complete is None or o.complete >= b.invoke - 0.5)]
    near.sort(key=lambda o: o.invoke)
    placed = set(id(ops[entry[0]]) for entry in linearized)
    for o in near[-30:]:
        detail.append(("  linearized " if id(o) in placed else "  pending    ") + repr(o))
    return Result(False, key, "no linearization exists", n, steps, detail)


def check(history, max_steps=1_000_000):
    """Checks a list of Op for linearizability, key by key. Returns the first failing key's
    Result, or a passing Result whose ops_checked counts every op the search placed."""
    by_key = {}
    for o in history:
        by_key.setdefault(o.key, []).append(o)
    total_ops = total_steps = 0
    unknown = None
    for key in sorted(by_key, key=str):
        r = _check_key(key, by_key[key], max_steps)
        total_ops += r.ops_checked
        total_steps += r.steps
        if r.ok is False:
            return r
        if r.ok is None and unknown is None:
            unknown = r
    if unknown is not None:
        return unknown
    return Result(True, ops_checked=total_ops, steps=total_steps)
