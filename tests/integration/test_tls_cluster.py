"""tls-cluster yes: every byte between members travels in mutual TLS (issue 16), with
certificates made by the openssl CLI. Members verify each other against the CA and the
address they know the other by; a stranger's certificate, an expired one, one naming another
host, or clear text on the peer port are refused, and both sides log why. The fault tests'
checked workload runs over TLS through kill -9 and a partition, and certificates reload under
load without a failed request."""

import os
import signal
import subprocess

import pytest

from cluster import SECRET, Cluster, info
from conftest import wait_for
from fault_proxy import ProxiedCluster
from lincheck import OK
from test_faults import kill_leader_rounds, partition_round, report
from test_membership import ProxiedGrowingCluster, missed_join_heard_from_the_new_leader
from workload import Workload, verify

pytestmark = pytest.mark.halyard_only


def openssl(*args, cwd):
    r = subprocess.run(["openssl"] + list(args), cwd=cwd, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """ca and other-ca; node certificates for 127.0.0.1: node (ca), node2 (ca, a second key),
    stranger (other-ca), expired (ca, ended yesterday), elsewhere (ca, names another host)."""
    d = str(tmp_path_factory.mktemp("certs"))
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", *ec, "-keyout", ca + ".key", "-out", ca + ".crt", "-days", "2",
                "-subj", "/CN=halyard test " + ca, cwd=d)
    with open(os.path.join(d, "local.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    with open(os.path.join(d, "elsewhere.ext"), "w") as f:
        f.write("subjectAltName=DNS:elsewhere.example\n")
    for who, ca, ext, days in (("node", "ca", "local", "2"), ("node2", "ca", "local", "2"),
                               ("stranger", "other-ca", "local", "2"),
                               ("expired", "ca", "local", "-1"),
                               ("elsewhere", "ca", "elsewhere", "2")):
        openssl("req", *ec, "-keyout", who + ".key", "-out", who + ".csr", "-subj",
                "/CN=" + who, cwd=d)
        openssl("x509", "-req", "-in", who + ".csr", "-CA", ca + ".crt", "-CAkey", ca + ".key",
                "-CAcreateserial", "-out", who + ".crt", "-days", days, "-extfile", ext + ".ext",
                cwd=d)
    return d


def tls_extra(certs, who="node", **more):
    extra = {"tls-cluster": "yes", "tls-cert-file": os.path.join(certs, who + ".crt"),
             "tls-key-file": os.path.join(certs, who + ".key"),
             "tls-ca-cert-file": os.path.join(certs, "ca.crt"), "request-timeout-ms": 1000}
    extra.update(more)
    return extra


class MixedCluster(Cluster):
    """A Cluster whose node i may run with settings of its own (per_node[i] replaces or, with
    None values, removes settings of the shared `extra`)."""

    def __init__(self, tmp_path_factory, n, extra, per_node):
        super().__init__(tmp_path_factory, n, extra)
        self.per_node = per_node

    def argv(self, i):
        saved = self.extra
        mine = dict(saved)
        for k, v in self.per_node.get(i, {}).items():
            if v is None:
                mine.pop(k, None)
            else:
                mine[k] = v
        self.extra = mine
        try:
            return super().argv(i)
        finally:
            self.extra = saved


def log_of(c, i):
    return c.nodes[i].log_tail(1 << 20)


def wait_logged(c, i, words, what):
    wait_for(lambda: all(w in log_of(c, i) for w in words), 20,
             "%s: %s" % (c.names[i], what))


def peer_handshake(certs, port, cert="node"):
    """openssl s_client to a peer port with a client certificate; returns its output."""
    r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-CAfile",
                        os.path.join(certs, "ca.crt"), "-cert", os.path.join(certs, cert + ".crt"),
                        "-key", os.path.join(certs, cert + ".key"), "-verify_return_error",
                        "-verify_ip", "127.0.0.1", "-brief"],
                       input="", capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout + r.stderr


def test_cluster_over_mutual_tls_replicates(tmp_path_factory, certs, clusters):
    """Three members over mTLS elect a leader and replicate; the peer port answers TLS (with
    the node's certificate) and says so in the log."""
    c = Cluster(tmp_path_factory, 3, tls_extra(certs))
    clusters.append(c)
    c.start_all()
    li = c.leader()
    cl = c.nodes[li].client()
    assert cl.set("tls:k", "between members over tls")
    for i in range(3):
        wait_for(lambda: c.nodes[i].client().get("tls:k") == "between members over tls", 10,
                 "%s to apply the write" % c.names[i])
        assert "(TLS)" in log_of(c, i)
    rc, out = peer_handshake(certs, c.ports[0] + 10000)
    assert rc == 0 and "CN = node" in out, out


@pytest.mark.parametrize("case", ["stranger", "expired", "elsewhere", "plain"])
def test_a_member_with_a_bad_certificate_or_none_is_refused(tmp_path_factory, certs, clusters,
                                                            case):
    """n3 shows a certificate from another CA, an expired one, one naming another host, or
    speaks clear text on the peer port: n1 and n2 refuse it and log why, n3 logs its side,
    and the majority serves on without it."""
    per = {"stranger": tls_extra(certs, "stranger"), "expired": tls_extra(certs, "expired"),
           "elsewhere": tls_extra(certs, "elsewhere"),
           "plain": {"tls-cluster": None, "tls-cert-file": None, "tls-key-file": None,
                     "tls-ca-cert-file": None}}[case]
    c = MixedCluster(tmp_path_factory, 3, tls_extra(certs), {2: per})
    clusters.append(c)
    c.start_all()
    li = c.leader(deadline_s=15, exclude=(2,))
    assert li != 2
    # What each side says, from OpenSSL's verification and alerts and our own checks.
    ours, theirs = {
        "stranger": (["unable to get local issuer certificate"], ["alert unknown ca"]),
        "expired": (["certificate has expired"], ["alert certificate expired"]),
        "elsewhere": (["IP address mismatch", "does not name its address"],
                      ["alert bad certificate"]),
        "plain": (["TLS handshake failed"], ["protocol error"]),
    }[case]
    for i in (0, 1):
        wait_logged(c, i, ours, "refusing n3 (%s)" % case)
    wait_logged(c, 2, theirs, "n3's side of the refusal (%s)" % case)
    cl = c.nodes[li].client()
    assert cl.set("tls:majority", "1")
    assert int(info(c.ports[2])["raft_commit_index"]) < int(info(c.ports[li])["raft_commit_index"])


def test_checked_workload_over_tls_through_kill9(tmp_path_factory, certs, clusters):
    """The fault tests' workload over a mutual-TLS cluster: kill -9 of the leader twice (each
    restart makes new TLS connections), then a linearizable history and converged replicas."""
    c = Cluster(tmp_path_factory, 3, tls_extra(certs))
    clusters.append(c)
    c.start_all()
    c.leader()
    wl = Workload(c.ports, seed=7).start()
    try:
        wl.wait_progress(200, 15)
        kill_leader_rounds(c, wl, 2)
        wl.wait_progress(100, 15)
    finally:
        wl.stop()
    report("tls kill9x2", c, verify(c, wl))


def test_checked_workload_over_tls_through_a_partition(tmp_path_factory, certs, clusters):
    """Through the fault proxy (TLS passes it as bytes): the leader isolated, stalled then
    dropped; the majority goes on and the whole history is linearizable after healing."""
    c = ProxiedCluster(tmp_path_factory, 3, tls_extra(certs))
    clusters.append(c)
    c.start_all()
    c.leader()
    wl = Workload(c.ports, seed=8, pinned=c.ports, addr_map=c.moved_map()).start()
    answers = []
    try:
        wl.wait_progress(200, 15)
        for mode in ("stall", "drop"):
            li = c.leader()
            others = [i for i in range(3) if i != li]
            answers.append(partition_round(c, wl, [li], others, mode=mode))
        wl.wait_progress(100, 15)
    finally:
        wl.stop()
    report("tls partition leader isolated", c, verify(c, wl), minority_answers=answers)


def test_member_that_missed_a_join_hears_the_new_leader_over_tls(tmp_path_factory, certs):
    """The guest rule with tls-cluster (test_membership.py's test of the same name): n3, cut
    off while n4 joined, admits n4 as a guest once the TLS handshake and the cluster secret's
    proof pass and n4's certificate names the address it connects from (there is no member
    address for its name yet); once n3's log names n4, its certificate names that address too."""
    missed_join_heard_from_the_new_leader(ProxiedGrowingCluster(tmp_path_factory, 3,
                                                                tls_extra(certs)))


def test_certificates_reload_under_load_without_a_failed_request(tmp_path_factory, certs,
                                                                 clusters):
    """While clients write, every member loads a new certificate (CONFIG SET on one, SIGHUP
    after replacing the files on the others): no request fails, open links go on, and new
    connections to the peer port show the new certificate. A bad certificate is refused and
    the old one stays."""
    c = Cluster(tmp_path_factory, 3, {})
    paths = []
    for i in range(3):  # each node's own copy of the files, to be replaced in place
        d = os.path.join(c.dir, "tls-%d" % i)
        os.makedirs(d)
        for ext in ("crt", "key"):
            with open(os.path.join(certs, "node." + ext)) as src, \
                    open(os.path.join(d, "node." + ext), "w") as dst:
                dst.write(src.read())
        paths.append(d)
    c.per_node = {i: {"tls-cert-file": os.path.join(paths[i], "node.crt"),
                      "tls-key-file": os.path.join(paths[i], "node.key")} for i in range(3)}
    c.__class__ = MixedCluster
    c.extra = tls_extra(certs)
    clusters.append(c)
    c.start_all()
    c.leader()
    wl = Workload(c.ports, seed=9).start()
    try:
        wl.wait_progress(200, 15)
        # A certificate from another CA's key pair that does not match: refused, old one stays.
        r = c.nodes[0].client()
        with pytest.raises(Exception, match="tls-key-file"):
            r.config_set("tls-cert-file", os.path.join(certs, "node2.crt"))
        assert r.execute_command("CONFIG", "SET", "tls-cert-file",
                                 os.path.join(certs, "node2.crt"), "tls-key-file",
                                 os.path.join(certs, "node2.key")) == "OK"
        for i in (1, 2):
            for ext in ("crt", "key"):
                with open(os.path.join(certs, "node2." + ext)) as src, \
                        open(os.path.join(paths[i], "node." + ext), "w") as dst:
                    dst.write(src.read())
            c.nodes[i].send_signal(signal.SIGHUP)
        for i in range(3):
            wait_for(lambda: "CN = node2" in peer_handshake(certs, c.ports[i] + 10000)[1], 10,
                     "%s's peer port to show the new certificate" % c.names[i])
        wl.wait_progress(200, 15)
    finally:
        wl.stop()
    summary = verify(c, wl)
    failed = [o for o in wl.history if o.status != OK]
    assert not failed, "requests failed during the reload: %s" % failed[:5]
    report("tls reload under load", c, summary)
