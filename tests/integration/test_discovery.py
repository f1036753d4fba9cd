"""Discovery for --join with real DNS: nodes in network namespaces (netns.py), each joiner
with a resolv.conf of its own naming a small DNS server (dnsserver.py) inside its namespace.
A joiner given an SRV name (_halyard._tcp.NAME) asks for it at every attempt and tries its
targets best first (the first answers nothing here); a joiner given a name with two A records
tries both (the first refuses). Both end as followers of the cluster. About 10 s."""

import socket

import pytest

from conftest import wait_for
from dnsserver import DnsServer
from netns import PORT, NetnsCluster, in_ns

pytestmark = pytest.mark.halyard_only


def dns_in(c, i, a=None, srv=None):
    def bind():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 53))
        return s
    return DnsServer(in_ns(c.ns[i], bind), a=a, srv=srv)


def test_join_through_srv_records_and_a_name_with_several_addresses(tmp_path_factory, clusters):
    c = NetnsCluster(tmp_path_factory, 5)
    clusters.append(c)
    c.set_bootstrap([0, 1, 2])
    peer = PORT + 10000
    c.set_join(3, "_halyard._tcp.hy.test")
    c.set_join(4, "members.hy.test:%d" % peer)
    servers = []
    try:
        for i in (3, 4):
            c.set_resolver(i)
        servers.append(dns_in(c, 3, a={"dead.hy.test": ["127.0.0.1"], "m2.hy.test": [c.addrs[1]]},
                              srv={"_halyard._tcp.hy.test": [(0, 1, peer, "dead.hy.test"),
                                                             (1, 1, peer, "m2.hy.test")]}))
        servers.append(dns_in(c, 4, a={"members.hy.test": ["127.0.0.1", c.addrs[2]]}))
        for i in (0, 1, 2):
            c.start(i)
        c.leader()
        c.start(3)
        wait_for(lambda: c.role(3)[0] == "follower", 30, "n4 (joined through SRV) a follower")
        c.start(4)
        wait_for(lambda: c.role(4)[0] == "follower", 30, "n5 (joined through a name) a follower")
        assert ("_halyard._tcp.hy.test", 33) in servers[0].queries
        assert ("members.hy.test", 1) in servers[1].queries
        log3 = c.nodes[3].log_tail(1 << 20)
        assert "cannot reach dead.hy.test:%d" % PORT in log3, log3
        # The address book is replicated: n1 lists both once it has applied their joins.
        wait_for(lambda: {m.split(b"@")[0] for m in c.cmd(0, "HALYARD", "PEERS")} >= {b"n4", b"n5"},
                 10, "n1 to list n4 and n5 among the members")
    finally:
        for s in servers:
            s.stop()
