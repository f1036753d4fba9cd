"""The linearizability checker itself: hand-made histories that are and are not linearizable,
and large generated ones (a correct register, then the same history with one result broken)."""

import random

from lincheck import FAIL, INFO, OK, VALUE_SPAN, Op, check


def S(key, v, t0, t1, status=OK, c=0):
    return Op("set", key, arg=v, status=status, invoke=t0, complete=t1, client=c)


def G(key, v, t0, t1, status=OK, c=0):
    return Op("get", key, result=v, status=status, invoke=t0, complete=t1, client=c)


def I(key, v, t0, t1, status=OK, c=0):
    return Op("incr", key, result=v, status=status, invoke=t0, complete=t1, client=c)


def test_sequential_history_is_linearizable():
    """A sequential history that follows the register model passes."""
    h = [G("k", None, 0, 1), S("k", 10, 2, 3), G("k", 10, 4, 5), I("k", 11, 6, 7), I("k", 12, 8, 9), G("k", 12, 10, 11)]
    r = check(h)
    assert r.ok is True, r
    assert r.ops_checked == 6


def test_stale_read_is_rejected():
    """A read that returns a value overwritten before the read began is rejected."""
    h = [S("k", 1, 0, 1), S("k", 2, 2, 3), G("k", 1, 4, 5)]
    r = check(h)
    assert r.ok is False, r
    assert r.key == "k"
    assert "GET k" in "\n".join(r.detail)


def test_lost_acknowledged_write_is_rejected():
    """An acknowledged write that a later read does not see (lost write) is rejected."""
    assert check([S("k", 1, 0, 1), G("k", None, 2, 3)]).ok is False
    # The later of two acknowledged writes is lost: the final read shows the earlier one.
    assert check([S("k", 1, 0, 1), S("k", 2, 2, 3), I("j", 1, 0, 1), G("k", 1, 10, 11)]).ok is False


def test_read_of_a_value_never_written_is_rejected():
    """A read returning a value no write produced is rejected."""
    assert check([S("k", 1, 0, 1), G("k", 7, 2, 3)]).ok is False
    assert check([G("k", 7, 0, 1)]).ok is False


def test_concurrent_overlap_is_fine():
    """Reads overlapping a write may see old or new value, but once new is seen, never old again."""
    w = S("k", 5, 0, 10)
    assert check([w, G("k", None, 1, 2), G("k", 5, 3, 4), G("k", 5, 5, 6)]).ok is True
    assert check([w, G("k", 5, 1, 2, c=1), G("k", None, 1.5, 2.5, c=2)]).ok is True  # overlapping reads
    assert check([w, G("k", 5, 1, 2), G("k", None, 3, 4)]).ok is False  # went back in time
    # Two concurrent writes and reads ordering them consistently are fine; inconsistently not.
    a, b = S("k", 1, 0, 5, c=1), S("k", 2, 0, 5, c=2)
    assert check([a, b, G("k", 1, 6, 7), G("k", 1, 8, 9)]).ok is True
    assert check([a, b, G("k", 2, 6, 7), G("k", 1, 8, 9)]).ok is False


def test_two_leaders_acknowledging_is_rejected():
    """Two acknowledged writes then two later reads disagreeing on the winner (split brain)."""
    h = [S("k", 1, 0, 1, c=1), S("k", 2, 0, 1, c=2), G("k", 1, 2, 3, c=1), G("k", 2, 2, 3, c=2),
         G("k", 1, 4, 5, c=1), G("k", 2, 4, 5, c=2)]
    assert check(h).ok is False


def test_incr_results_are_checked():
    """INCR results must be consecutive: a duplicate result or a double apply is rejected."""
    assert check([I("k", 1, 0, 5, c=1), I("k", 2, 0, 5, c=2)]).ok is True
    assert check([I("k", 1, 0, 5, c=1), I("k", 1, 0, 5, c=2)]).ok is False  # both got 1
    # One INCR acknowledged once but applied twice.
    assert check([S("k", 0, 0, 1), I("k", 1, 2, 3), G("k", 2, 4, 5)]).ok is False


def test_indeterminate_write_may_apply_late_or_never():
    """An indeterminate write may take effect any time after its invocation, or not at all."""
    late = [S("k", 1, 0, None, status=INFO), G("k", None, 1, 2), G("k", 1, 100, 101)]
    assert check(late).ok is True
    never = [S("k", 1, 0, None, status=INFO), G("k", None, 1, 2), G("k", None, 100, 101)]
    assert check(never).ok is True
    # ...but never before it was invoked.
    early = [G("k", 1, 0, 1), S("k", 1, 2, None, status=INFO)]
    assert check(early).ok is False
    # And once seen it cannot be un-applied.
    flap = [S("k", 1, 0, None, status=INFO), G("k", 1, 1, 2), G("k", None, 3, 4)]
    assert check(flap).ok is False


def test_indeterminate_incr_counts_at_most_once():
    """An indeterminate INCR may add one or nothing, never two."""
    base = [S("k", 0, 0, 1), I("k", None, 2, None, status=INFO)]
    assert check(base + [G("k", 0, 3, 4)]).ok is True
    assert check(base + [G("k", 1, 3, 4)]).ok is True
    assert check(base + [G("k", 2, 3, 4)]).ok is False
    assert check(base + [I("k", 2, 3, 4)]).ok is True
    assert check(base + [I("k", 3, 3, 4)]).ok is False


def test_failed_ops_have_no_effect():
    """A definitely failed write (-TRYAGAIN, -MOVED) must not be visible."""
    h = [S("k", 1, 0, 1), S("k", 2, 2, 3, status=FAIL), G("k", 2, 4, 5)]
    assert check(h).ok is False
    assert check(h[:2] + [G("k", 1, 4, 5)]).ok is True


def test_keys_are_checked_independently():
    """A bad history on one key is found among good ones on other keys, and named."""
    h = [S("a", 1, 0, 1), G("a", 1, 2, 3), S("b", 1, 0, 1), G("b", None, 2, 3), S("c", 3, 0, 1)]
    r = check(h)
    assert r.ok is False and r.key == "b", r


def test_search_bound_answers_unknown():
    """When the step bound is hit the checker says unknown (None), not pass or fail."""
    h = [S("k", i * VALUE_SPAN, 0, 10, c=i) for i in range(12)] + [G("k", None, 11, 12)]
    r = check(h, max_steps=50)
    assert r.ok is None, r
    assert check(h).ok is False


def generate(rng, keys=4, clients=8, ops_per_client=1500, p_info=0.01):
    """A history of a correct atomic register: each op takes effect at a random point inside its
    interval (an indeterminate one at any later point, or never)."""
    uid = [0]
    ops = []  # (linearization point or None, Op)
    for c in range(clients):
        t = rng.random()
        for _ in range(ops_per_client):
            key = "k%d" % rng.randrange(keys)
            kind = rng.choice(("set", "get", "get", "incr"))
            t0 = t + rng.random() * 0.002
            t1 = t0 + rng.expovariate(1 / 0.004)
            info = rng.random() < p_info and kind != "get"
            if kind == "set":
                uid[0] += 1
                op = Op("set", key, arg=uid[0] * VALUE_SPAN, invoke=t0, complete=t1, client=c)
            else:
                op = Op(kind, key, invoke=t0, complete=t1, client=c)
            if info:
                op.status, op.complete = INFO, None
                point = None if rng.random() < 0.5 else t0 + rng.random() * 0.5
            else:
                point = t0 + rng.random() * (t1 - t0)
            ops.append((point, op))
            t = t1
    state = {}
    for point, op in sorted((p for p in ops if p[0] is not None), key=lambda p: p[0]):
        cur = state.get(op.key)
        if op.kind == "set":
            state[op.key] = op.arg
        elif op.kind == "get":
            op.result = cur
        else:
            state[op.key] = op.result = 1 if cur is None else cur + 1
    for _point, op in ops:
        if op.status == INFO:
            op.result = None
    return [op for _p, op in ops]


def test_large_generated_history_passes_and_a_broken_one_fails():
    """12k ops on 4 keys with indeterminate writes: the correct history passes; one GET changed
    to a stale value (one the key held earlier) is found."""
    rng = random.Random(1234)
    h = generate(rng)
    r = check(h)
    assert r.ok is True, r
    assert r.ops_checked > 10000
    # Break one read in the middle: make it return a value the key held well before the read
    # began and which was definitely overwritten by then.
    sets = {}
    for o in sorted(h, key=lambda o: o.invoke):
        if o.kind == "set" and o.status == OK:
            sets.setdefault(o.key, []).append(o)
    gets = sorted((o for o in h if o.kind == "get" and o.status == OK and o.result is not None),
                  key=lambda o: o.invoke)
    target = gets[len(gets) // 2]
    old = [s for s in sets[target.key] if s.complete < target.invoke - 1.0]
    assert len(old) >= 2
    # old[-2] was followed by old[-1], which completed before the read began.
    target.result = old[-2].arg
    r = check(h)
    assert r.ok is False, r
    assert r.key == target.key
