"""Pub/sub (issue 13): SUBSCRIBE/PSUBSCRIBE/UNSUBSCRIBE/PUNSUBSCRIBE/PUBLISH/PUBSUB with Redis
7.0's replies in RESP2 and RESP3 (push), the RESP2 subscriber context, a slow subscriber
disconnected past client-output-buffer-limit-pubsub, and a PUBLISH on any node of a 3-node
cluster reaching the subscribers of every node, in the order it was published."""

import socket

import pytest
import redis

from cluster import Cluster
from conftest import RawConn, wait_for


def test_subscribe_publish_resp2(srv):
    """Exact RESP2 replies: subscribe/psubscribe notices with the running count, message and
    pmessage, PUBLISH's receiver count, every UNSUBSCRIBE form, and the subscriber context."""
    sub, pub = srv.raw(), srv.raw()
    sub.send(sub.encode("SUBSCRIBE", "a", "b"))
    assert sub.read() == [b"subscribe", b"a", 1]
    assert sub.read() == [b"subscribe", b"b", 2]
    assert sub.cmd("PSUBSCRIBE", "n*") == [b"psubscribe", b"n*", 3]
    assert pub.cmd("PUBLISH", "a", "hello") == 1
    assert sub.read() == [b"message", b"a", b"hello"]
    assert pub.cmd("PUBLISH", "news", "x") == 1
    assert sub.read() == [b"pmessage", b"n*", b"news", b"x"]
    assert pub.cmd("PUBLISH", "nobody", "x") == 1  # n* matches
    assert sub.read() == [b"pmessage", b"n*", b"nobody", b"x"]
    assert pub.cmd("PUBLISH", "zzz", "x") == 0
    assert sub.cmd("GET", "k") == ("ERR Can't execute 'get': only (P|S)SUBSCRIBE / "
                                   "(P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context")
    assert sub.cmd("PING") == [b"pong", b""]
    assert sub.cmd("PING", "hi") == [b"pong", b"hi"]
    assert pub.cmd("PUBSUB", "CHANNELS") in ([b"a", b"b"], [b"b", b"a"])
    assert pub.cmd("PUBSUB", "CHANNELS", "a*") == [b"a"]
    assert pub.cmd("PUBSUB", "NUMSUB", "a", "zzz") == [b"a", 1, b"zzz", 0]
    assert pub.cmd("PUBSUB", "NUMPAT") == 1
    assert sub.cmd("UNSUBSCRIBE", "a") == [b"unsubscribe", b"a", 2]
    sub.send(sub.encode("UNSUBSCRIBE"))
    assert sub.read() == [b"unsubscribe", b"b", 1]
    assert sub.cmd("PUNSUBSCRIBE") == [b"punsubscribe", b"n*", 0]
    assert sub.cmd("UNSUBSCRIBE") == [b"unsubscribe", None, 0]
    assert sub.cmd("GET", "k") is None  # out of the subscriber context
    # RESET leaves it too.
    sub.cmd("SUBSCRIBE", "a")
    assert sub.cmd("RESET") == "RESET"
    assert pub.cmd("PUBLISH", "a", "x") == 0
    assert sub.cmd("PING") == "PONG"
    sub.close()
    pub.close()


def test_resp3_push_and_redis_py(srv):
    """RESP3: notices and messages are pushes, and other commands run between them; redis-py's
    PubSub object sees its messages."""
    with srv.raw() as sub, srv.raw() as pub:
        sub.cmd("HELLO", "3")
        assert sub.cmd("SUBSCRIBE", "c") == [b"subscribe", b"c", 1]
        assert sub.cmd("SET", "k", "v") == "OK"
        pub.cmd("PUBLISH", "c", "m")
        assert sub.read() == [b"message", b"c", b"m"]
        assert sub.cmd("GET", "k") == b"v"
    r = srv.client()
    p = r.pubsub()
    p.subscribe("events")
    wait_for(lambda: r.pubsub_numsub("events") == [("events", 1)], 5, "the subscription")
    assert r.publish("events", "e1") == 1
    got = []
    wait_for(lambda: (m := p.get_message(timeout=0.2)) is not None and m["type"] == "message"
             and got.append(m["data"]) is None, 5, "the message")
    assert got == ["e1"]
    p.close()
    r.close()


def test_slow_subscriber_disconnected(servers):
    """A subscriber that never reads is closed once its pending output passes the pubsub
    limit; the publisher and other clients go on."""
    s = servers.start({"client-output-buffer-limit-pubsub": "256kb"})
    slow = socket.create_connection(("127.0.0.1", s.port))
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.sendall(b"*2\r\n$9\r\nSUBSCRIBE\r\n$4\r\nfeed\r\n")
    with s.raw() as pub:
        wait_for(lambda: pub.cmd("PUBSUB", "NUMSUB", "feed") == [b"feed", 1], 5, "the subscriber")
        payload = "x" * 16384
        sent = 0

        def closed():
            nonlocal sent
            for _ in range(64):
                pub.cmd("PUBLISH", "feed", payload)
                sent += 1
            return pub.cmd("PUBSUB", "NUMSUB", "feed") == [b"feed", 0]

        wait_for(closed, 30, "the slow subscriber to be disconnected")
        assert pub.cmd("PING") == "PONG"
    assert "client-output-buffer-limit-pubsub" in s.log_tail()
    slow.close()


@pytest.fixture
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory, 3, {"partitions": 2})
    c.start_all()
    yield c
    errors = c.stop_all()
    assert not errors, "\n".join(errors)


def test_publish_reaches_every_node_in_order(cluster):
    """A subscriber on each node gets every message published on any node, each publisher's
    messages in the order it published them; PUBLISH counts this node's receivers only (as
    Redis Cluster)."""
    subs = []
    for port in cluster.ports:
        c = RawConn(port)
        assert c.cmd("SUBSCRIBE", "news") == [b"subscribe", b"news", 1]
        subs.append(c)
    seen = [set() for _ in subs]

    def drain_probes():
        for j, s in enumerate(subs):
            try:
                s.sock.settimeout(0.2)
                while True:
                    m = s.read()
                    seen[j].add(m[2])
            except (socket.timeout, TimeoutError):
                pass
        if all(len(x) == 3 for x in seen):
            return True
        for i, port in enumerate(cluster.ports):  # a link not up yet dropped it: publish again
            with RawConn(port) as pub:
                pub.cmd("PUBLISH", "news", "probe-%d" % i)
        return False

    wait_for(drain_probes, 20, "every node's probe to reach every subscriber")
    for s in subs:  # leftovers of repeated probes
        try:
            s.sock.settimeout(0.3)
            while True:
                s.read()
        except (socket.timeout, TimeoutError):
            pass
        s.sock.settimeout(10)
    with RawConn(cluster.ports[1]) as pub:
        for k in range(200):
            assert pub.cmd("PUBLISH", "news", "m%d" % k) == 1
    for s in subs:
        got = [s.read() for _ in range(200)]
        assert got == [[b"message", b"news", b"m%d" % k] for k in range(200)]
    for s in subs:
        s.close()


def test_client_reply_off_keeps_pushes(srv):
    """CLIENT REPLY OFF drops replies (a write's too) but not subscribe notices and messages
    (Redis 7.0); SKIP drops the next reply only; ON answers OK."""
    with srv.raw() as c, srv.raw() as pub:
        c.send(c.encode("CLIENT", "REPLY", "OFF") + c.encode("SET", "a", "1") +
               c.encode("GET", "a") + c.encode("CLIENT", "REPLY", "ON"))
        assert c.read() == "OK"
        c.send(c.encode("CLIENT", "REPLY", "SKIP") + c.encode("SET", "a", "2") +
               c.encode("GET", "a"))
        assert c.read() == b"2"
        c.cmd("HELLO", "3")
        c.send(c.encode("CLIENT", "REPLY", "OFF") + c.encode("SUBSCRIBE", "ch"))
        assert c.read() == [b"subscribe", b"ch", 1]
        assert pub.cmd("PUBLISH", "ch", "m") == 1
        assert c.read() == [b"message", b"ch", b"m"]
        c.send(c.encode("SET", "b", "1") + c.encode("CLIENT", "REPLY", "ON"))
        assert c.read() == "OK"
        assert pub.cmd("GET", "b") == b"1"


def test_acl_channel_rules(servers):
    """&pattern rules (Redis 7): SUBSCRIBE and PUBLISH need a channel matching one of the
    user's patterns, PSUBSCRIBE a pattern equal to one of them; denials answer NOPERM and are in
    ACL LOG; allchannels allows every channel; ACL DRYRUN says which channel is refused."""
    s = servers.start()
    admin = s.client()
    assert admin.execute_command("ACL", "SETUSER", "news", "on", ">pw", "resetchannels",
                                 "&news.*", "+@pubsub") == "OK"
    assert admin.execute_command("ACL", "SETUSER", "all", "on", ">pw", "allchannels",
                                 "+@pubsub") == "OK"
    u = redis.Redis(port=s.port, username="news", password="pw", decode_responses=True)
    assert u.publish("news.sport", "goal") == 0
    with pytest.raises(redis.exceptions.NoPermissionError, match="channels"):
        u.publish("weather", "rain")
    p = u.pubsub()
    p.subscribe("news.tech")
    with pytest.raises(redis.exceptions.NoPermissionError, match="channels"):
        p2 = u.pubsub()
        p2.subscribe("weather")
        p2.get_message(timeout=2)
    p3 = u.pubsub()
    p3.psubscribe("news.*")  # the pattern itself: allowed
    with pytest.raises(redis.exceptions.NoPermissionError, match="channels"):
        p4 = u.pubsub()
        p4.psubscribe("news.s*")  # narrower, but not literally one of the user's: refused
        p4.get_message(timeout=2)
    log = admin.execute_command("ACL", "LOG")
    assert any(dict(zip(e[::2], e[1::2])).get("reason") == "channel" for e in log), log
    assert admin.execute_command("ACL", "DRYRUN", "news", "PUBLISH", "weather", "x") == \
        "This user has no permissions to access the 'weather' channel"
    a = redis.Redis(port=s.port, username="all", password="pw", decode_responses=True)
    assert a.publish("weather", "rain") == 0
