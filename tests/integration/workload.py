"""A concurrent client workload against a halyard cluster that records a checkable history.

Client threads run SET (unique values), GET and INCR on a small set of keys, and SETs of
fresh keys (a ledger: each written once, so each acknowledged one must be readable at the
end). Every operation is recorded with monotonic invoke and complete times and its outcome
(lincheck.Op), classified by what the client can know:

  ok    a reply that says the op took effect (+OK, an integer, a value or nil);
  fail  definitely not applied: -MOVED, -TRYAGAIN, -NOQUORUM (the server says it did not
        propose it; should that be a lie, the write shows up later and lincheck rejects the
        history);
  info  indeterminate: a timeout, a connection error once the request may have been sent,
        -UNKNOWN outcome, or any unexpected error reply (also counted, and reported).

A reply that is not valid RESP (conftest.ProtocolError) is none of these: it is recorded in
`protocol_errors`, fails wait_progress() at its next poll and verify() before anything else.

Roaming clients start at a random node, follow -MOVED to the leader it names, and on
-TRYAGAIN, -NOQUORUM, timeouts and connection errors move on to the next node. Pinned clients always
talk to one node (to probe what a minority answers). At the end, `verify` waits for the
cluster to settle, reads every key on the leader (linearizable reads, added to the history),
checks every replica converged to the same values, every acknowledged ledger write is
readable, and the whole history is linearizable.
"""

import itertools
import os
import random
import socket
import threading
import time

import lincheck
from lincheck import FAIL, INFO, OK, VALUE_SPAN, Op
from conftest import ProtocolError, RawConn, RespError, wait_for
from cluster import info

SOCKET_TIMEOUT_S = 2.0


class Workload:
    def __init__(self, ports, keys=4, clients=8, pinned=(), readonly=(), seed=0, timeout_s=SOCKET_TIMEOUT_S,
                 addr_map=None):
        """ports: every node's client port. pinned: extra clients, one per listed port, that
        never leave that node. readonly: extra clients, one per listed port, that send
        READONLY and then only GET there (stale reads: not linearizable, which is what a
        test of the checks themselves needs). addr_map: {port named in -MOVED: client port},
        for clusters whose nodes know each other by other addresses (ProxiedCluster)."""
        self.addr_map = dict(addr_map or {})
        self.ports = list(ports)
        self.keys = ["k%d" % i for i in range(keys)]
        self.timeout_s = timeout_s
        self.seed = seed
        self.stop_event = threading.Event()
        self.uid = itertools.count(1)
        self.leader_hint = None  # a port some client learned from -MOVED
        self.histories = []
        self.ledgers = []
        self.errors = []  # unexpected error replies (kept as indeterminate ops too)
        self.protocol_errors = []  # replies that are not RESP: a failure, never indeterminate
        self.threads = []
        self.crashed = []
        specs = [(c, None, False) for c in range(clients)]
        specs += [(clients + k, p, False) for k, p in enumerate(pinned)]
        specs += [(clients + len(pinned) + k, p, True) for k, p in enumerate(readonly)]
        for c, pin, ro in specs:
            hist, ledger = [], []
            self.histories.append(hist)
            self.ledgers.append(ledger)
            t = threading.Thread(target=self._guarded, args=(c, pin, ro, hist, ledger), name="client-%d" % c, daemon=True)
            self.threads.append(t)

    # ---- running -----------------------------------------------------------------------

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self.stop_event.set()
        for t in self.threads:
            t.join(self.timeout_s * 3 + 5)
            assert not t.is_alive(), "workload thread %s did not stop" % t.name
        assert not self.crashed, "workload threads crashed: %r" % self.crashed

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def history(self):
        return [o for h in self.histories for o in h]

    def ledger(self):
        return [o for h in self.ledgers for o in h]

    def count(self, pred=lambda o: True):
        return sum(1 for h in self.histories for o in list(h) if pred(o))

    def acked_writes_since(self, t, ports=None):
        """How many writes were acknowledged that were invoked at or after monotonic time t."""
        return self.count(lambda o: o.status == OK and o.kind != "get" and o.invoke >= t
                          and (ports is None or o.node in ports))

    def wait_progress(self, n, deadline_s, what="acknowledged writes", ports=None):
        """Waits until n more writes are acknowledged from now on (optionally by given nodes)."""
        t = time.monotonic()
        def check():
            assert not self.crashed, "workload threads crashed: %r" % self.crashed
            self.check_protocol()
            return self.acked_writes_since(t, ports) >= n

        wait_for(check, deadline_s,
                 "%d %s (stats so far: %s)" % (n, what, self.stats()))

    def check_protocol(self):
        assert not self.protocol_errors, "malformed replies (not RESP): %r" % (self.protocol_errors[:5],)

    def stats(self):
        out = {}
        for o in self.history + self.ledger():
            k = "%s_%s" % (o.kind, o.status)
            out[k] = out.get(k, 0) + 1
        out["unexpected_errors"] = len(self.errors)
        out["protocol_errors"] = len(self.protocol_errors)
        return out

    def _guarded(self, *args):
        try:
            self._run(*args)
        except BaseException as e:  # noqa: BLE001 - reported by stop()
            self.crashed.append("%s: %r" % (threading.current_thread().name, e))
            raise

    def _run(self, c, pin, ro, hist, ledger):
        rng = random.Random(self.seed * 1000 + c)
        port = pin if pin is not None else rng.choice(self.ports)
        conn = None
        seq = 0
        while not self.stop_event.is_set():
            if conn is None:
                if pin is None and self.leader_hint is not None and rng.random() < 0.5:
                    port = self.leader_hint
                try:
                    conn = RawConn(port, timeout=self.timeout_s)
                    if ro and conn.cmd("READONLY") != "OK":
                        raise OSError("READONLY refused")
                except OSError:
                    if conn is not None:
                        conn.close()
                    conn = None
                    # Nothing was sent: no op. Try elsewhere after a short pause (the node may
                    # be down; this only paces the retry loop).
                    if pin is None:
                        port = self._next(port)
                    self.stop_event.wait(0.02)
                    continue
            r = 0.0 if ro else rng.random()
            key = rng.choice(self.keys)
            if r < 0.30:
                op = Op("get", key, status=INFO)
                args = ("GET", key)
            elif r < 0.55:
                op = Op("set", key, arg=next(self.uid) * VALUE_SPAN, status=INFO)
                args = ("SET", key, str(op.arg))
            elif r < 0.85:
                op = Op("incr", key, status=INFO)
                args = ("INCR", key)
            else:
                seq += 1
                lkey = "ledger:%d:%d" % (c, seq)
                op = Op("set", lkey, arg=next(self.uid) * VALUE_SPAN, status=INFO)
                args = ("SET", lkey, str(op.arg))
            op.client, op.node = c, port
            reply, sent_err = self._call(conn, op, args)
            (ledger if op.key.startswith("ledger:") else hist).append(op)
            if sent_err is not None:
                conn.close()
                conn = None
                if pin is None:
                    port = self._next(port)
                continue
            if isinstance(reply, RespError):
                if reply.startswith("MOVED ") and pin is None:
                    target = int(reply.rsplit(":", 1)[1])
                    target = self.addr_map.get(target, target)
                    if target not in self.ports:
                        self.errors.append((op, "-MOVED names an unknown address: %s" % reply))
                        target = self._next(port)
                    else:
                        self.leader_hint = target
                    if target != port:
                        conn.close()
                        conn = None
                        port = target
                elif reply.startswith(("TRYAGAIN", "NOQUORUM")) and pin is None:
                    conn.close()
                    conn = None
                    port = self._next(port)
                elif pin is not None:
                    # A pinned client on a node that cannot serve it would otherwise spin
                    # on instant redirects; this only paces it.
                    self.stop_event.wait(0.01)

    def _next(self, port):
        return self.ports[(self.ports.index(port) + 1) % len(self.ports)]

    def _call(self, conn, op, args):
        """Sends one command and classifies the reply into op. Returns (reply, error) where
        error is set when the connection must be dropped."""
        op.invoke = time.monotonic()
        try:
            conn.send(RawConn.encode(*args))
            reply = conn.read()
        except ProtocolError as e:
            # Garbage from the server: a failure of the test, not an unknown outcome. The op
            # stays indeterminate in the history (so the rest can still be checked) and the
            # connection is dropped, since the stream cannot be resynchronized.
            op.status, op.complete, op.err = INFO, None, "protocol error: %s" % e
            self.protocol_errors.append((op.node, " ".join(map(str, args)), str(e)))
            return None, e
        except (socket.timeout, OSError) as e:
            # Possibly sent and applied: indeterminate.
            op.status, op.complete, op.err = INFO, None, type(e).__name__
            return None, e
        now = time.monotonic()
        if isinstance(reply, RespError):
            op.err = str(reply)[:120]
            if reply.startswith(("MOVED ", "TRYAGAIN", "NOQUORUM")):
                op.status, op.complete = FAIL, None
            else:
                op.status, op.complete = INFO, None
                if not reply.startswith("UNKNOWN"):
                    self.errors.append((op, str(reply)))
            return reply, None
        try:
            if op.kind == "get":
                op.result = None if reply is None else int(reply)
            elif op.kind == "incr":
                assert isinstance(reply, int), reply
                op.result = reply
            else:
                assert reply == "OK", reply
        except (ValueError, AssertionError):
            op.status, op.complete, op.err = INFO, None, "unexpected reply %r" % (reply,)
            self.errors.append((op, op.err))
            return reply, None
        op.status, op.complete = OK, now
        return reply, None


# ---- verification after healing -------------------------------------------------------------


def leader_port(cluster, deadline_s=20):
    return cluster.ports[cluster.leader(deadline_s=deadline_s)]


def wait_converged(cluster, deadline_s=30):
    """Waits until one leader is known to every live node, has committed its whole log, and
    every live node has applied that commit index. Returns the leader's index."""
    live = [i for i, s in enumerate(cluster.nodes) if s is not None and s.alive()]
    state = {}

    def check():
        li = cluster.leader(deadline_s=deadline_s)
        linfo = info(cluster.ports[li])
        commit = int(linfo["raft_commit_index"])
        if int(linfo["raft_last_index"]) != commit:
            state["uncommitted"] = (linfo["raft_last_index"], commit)
            return False
        for i in live:
            ni = info(cluster.ports[i])
            if ni["raft_leader"] != linfo["raft_leader"] or int(ni["raft_applied_index"]) < commit:
                state["lagging"] = (i, ni.get("raft_role"), ni.get("raft_applied_index"), commit)
                return False
        state["leader"] = li
        return True

    wait_for(check, deadline_s, "every live node to follow one leader and apply its commit index (%r)" % (state,))
    return state["leader"]


def _pipeline(port, commands, timeout_s=10):
    with RawConn(port, timeout=timeout_s) as c:
        c.send(b"".join(RawConn.encode(*a) for a in commands))
        return [c.read() for _ in commands]


def final_reads(cluster, wl, deadline_s=30):
    """Reads every key on the leader (linearizable) and adds the reads to the history.
    Retries on redirects (a leader change) until every key was read with a value."""
    done = {}

    def attempt():
        port = leader_port(cluster)
        for key in wl.keys:
            if key in done:
                continue
            op = Op("get", key, status=INFO, client="final", node=port)
            op.invoke = time.monotonic()
            with RawConn(port, timeout=5) as c:
                reply = c.cmd("GET", key)
            if isinstance(reply, RespError):
                return False
            op.status, op.complete = OK, time.monotonic()
            op.result = None if reply is None else int(reply)
            done[key] = op
        return True

    wait_for(attempt, deadline_s, "final reads on the leader")
    wl.histories.append(list(done.values()))
    return {k: o.result for k, o in done.items()}


def verify_partitioned(cluster, wl, deadline_s=30):
    """verify() for a cluster of partitions: the final reads, then every node's view (its own
    replica where it holds one, the leader elsewhere) converges to them, every acknowledged
    ledger write is readable, and the history is linearizable. Returns (ledger, result)."""
    wl.check_protocol()
    values = final_reads(cluster, wl, deadline_s)
    for port in cluster.ports:
        def same(port=port):
            with RawConn(port) as conn:
                conn.cmd("READONLY")
                got = {k: conn.cmd("GET", k) for k in wl.keys}
            return {k: (None if v is None else int(v)) for k, v in got.items()} == values
        wait_for(same, deadline_s, "port %d's view to converge" % port)
    ledger = [o for o in wl.ledger() if o.status != INFO]
    with RawConn(cluster.ports[0]) as conn:
        for o in ledger:
            got = conn.cmd("GET", o.key)
            want = o.arg if o.status == OK else None
            assert (None if got is None else int(got)) == want, "ledger %s (%r): read %r" % (o.key, o, got)
    result = lincheck.check(wl.history)
    if result.ok is not True:
        where = ""
        if result.key is not None:
            # The failing key's whole history, in invocation order, for the report.
            path = os.path.join(cluster.dir, "history-%s.txt" % result.key)
            with open(path, "w") as f:
                for o in sorted((o for o in wl.history if o.key == result.key), key=lambda o: o.invoke):
                    f.write("%r\n" % (o,))
            where = " (the key's history: %s)" % path
        raise AssertionError("%r%s" % (result, where))
    return ledger, result


def verify(cluster, wl, deadline_s=30):
    """After healing: convergence, final reads, replicas agree, ledger durable, linearizable.
    Returns a summary dict (for the test's report)."""
    wl.check_protocol()
    li = wait_converged(cluster, deadline_s)
    values = final_reads(cluster, wl, deadline_s)
    # Every live replica holds the same values (stale reads, after convergence).
    live = [i for i, s in enumerate(cluster.nodes) if s is not None and s.alive()]
    li = wait_converged(cluster, deadline_s)
    for i in live:
        replies = _pipeline(cluster.ports[i], [("READONLY",)] + [("GET", k) for k in wl.keys])
        got = {k: (None if v is None else int(v)) for k, v in zip(wl.keys, replies[1:])}
        assert got == values, "node %s (port %d) diverges from the leader: %r vs %r" % (
            cluster.names[i], cluster.ports[i], got, values)
    # Every acknowledged ledger write is readable on the leader; indeterminate ones may or may
    # not be there, failed ones must not.
    ledger = [o for o in wl.ledger() if o.status != INFO]
    port = cluster.ports[li]
    for chunk in range(0, len(ledger), 500):
        ops = ledger[chunk:chunk + 500]
        replies = _pipeline(port, [("GET", o.key) for o in ops])
        for o, v in zip(ops, replies):
            assert not isinstance(v, RespError), "reading ledger key %s on the leader: %s" % (o.key, v)
            want = o.arg if o.status == OK else None
            got = None if v is None else int(v)
            assert got == want, "ledger %s (%r): expected %r, read %r" % (o.key, o, want, got)
    history = wl.history
    t0 = time.monotonic()
    result = lincheck.check(history)
    elapsed = time.monotonic() - t0
    assert result.ok is True, "history of %d ops: %r" % (len(history), result)
    assert not wl.errors, "unexpected error replies: %r" % (wl.errors[:10],)
    summary = dict(wl.stats())
    summary.update(ops_checked=result.ops_checked, lincheck_steps=result.steps, lincheck_s=round(elapsed, 2),
                   ledger_checked=len(ledger))
    return summary
