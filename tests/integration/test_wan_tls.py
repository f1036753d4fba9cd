"""A WAN link on the target's peer port (issue 18; docs/multi-region.md "The link's
transport"): the source proves the target's cluster secret in the peer handshake of a WAN link
(WAN_HELLO, CHALLENGE, AUTH, WELCOME), and with tls-cluster on the target runs it in TLS,
checking the target's certificate against a CA (the link's, or the member's
tls-ca-cert-file) and showing its own (the target asks every peer for one), over real
processes on 127.0.0.1. Certificates are made by the openssl CLI (test_tls_cluster's
fixture)."""

import hashlib
import hmac
import os
import secrets
import socket
import struct
import subprocess

import pytest

from cluster import SECRET
from conftest import RawConn, free_port, wait_for
from test_tls_cluster import certs  # noqa: F401 (a fixture)
from wan_pairs import add_link, cmd, content, halyctl, peer, status, text, wait_same
from wan_pairs import wan_clusters  # noqa: F401 (a fixture)

pytestmark = pytest.mark.halyard_only

PARTS = 2


def tls_pair(wan_clusters, certs, west_extra=None):  # noqa: F811
    """west (password pw) and east (password pe), both with tls-cluster (TLS on their peer
    ports) and certificates the test CA signed; returns west, east and west's peer address."""
    ca = os.path.join(certs, "ca.crt")
    west = wan_clusters.cluster(1, dict({
        "partitions": PARTS, "cluster-name": "west", "requirepass": "pw", "tls-cluster": "yes",
        "tls-cert-file": os.path.join(certs, "node.crt"),
        "tls-key-file": os.path.join(certs, "node.key"), "tls-ca-cert-file": ca},
        **(west_extra or {})))
    east = wan_clusters.cluster(1, {
        "partitions": PARTS, "cluster-name": "east", "requirepass": "pe", "tls-cluster": "yes",
        "tls-cert-file": os.path.join(certs, "node2.crt"),
        "tls-key-file": os.path.join(certs, "node2.key"), "tls-ca-cert-file": ca})
    return west, east, "127.0.0.1:%d" % peer(west)


def failing(c):
    """Whether every partition of c's first link has failed at least once."""
    ps = status(c)["links"][0]["partitions"]
    return len(ps) > 0 and all(p["failures"] > 0 for p in ps)


def test_link_over_tls_checks_the_target_and_ships(wan_clusters, certs):  # noqa: F811
    """With tls-cluster on the target's peer port: a link whose CA did not sign the target's
    certificate ships nothing (each batch fails the certificate check, the target stays
    empty); a link in clear text to the TLS peer port ships nothing either; the same link in
    TLS against the member's own CA ships every change, over TLS (the target logs the link's
    connection as TLS), and halyctl shows it."""
    west, east, to = tls_pair(wan_clusters, certs)

    add_link(east, to, "SECRET", SECRET, "CA", os.path.join(certs, "other-ca.crt"))
    for i in range(20):
        assert cmd(east, "SET", "k:%d" % i, "v%d" % i) == "OK"
    wait_for(lambda: failing(east), 30, "the link's batches to fail the certificate check",
             interval=0.2)
    link = status(east)["links"][0]
    assert link["tls"] and link["tls_ca"].endswith("other-ca.crt"), link
    assert "TLS handshake with %s failed" % to in link["partitions"][0]["last_error"], link
    assert content(west) == {}
    log = open(east.nodes[0].log_path).read()
    assert "TLS handshake with %s failed" % to in log, log[-2000:]

    # Clear text to a TLS peer port: refused, nothing applied.
    add_link(east, to, "SECRET", SECRET)
    wait_for(lambda: all("no answer to the link's handshake" in p["last_error"] and
                         "--link-tls" in p["last_error"]
                         for p in status(east)["links"][0]["partitions"]), 30,
             "the clear-text link to fail")
    assert content(west) == {}

    # The member's CA (tls-ca-cert-file) signed the target's certificate: the link ships.
    add_link(east, to, "SECRET", SECRET, "TLS")
    final = wait_same(east, west)
    assert len(final) == 20 and final["k:3"] == ("string", "v3"), final
    assert cmd(east, "SET", "after", "tls") == "OK"
    wait_for(lambda: content(west).get("after") == ("string", "tls"), 30, "a later change")
    link = status(east)["links"][0]
    assert link["tls"] and link["tls_ca"] == "", link
    out = halyctl(east, "wan", "status").stdout
    assert "tls: yes" in out, out
    wlog = open(west.nodes[0].log_path).read()
    assert "WAN link 'dr' from cluster 'east'" in wlog and "proved the cluster-secret over TLS" \
        in wlog, wlog[-3000:]


def wan_proof(secret, role, source, nonce_t, nonce_s):
    msg = "halyard-wan-v1\n%s\n%s\n%s\n%s" % (role, source, nonce_t, nonce_s)
    return hmac.new(secret.encode(), msg.encode(), hashlib.sha256).hexdigest()


def test_link_proves_the_target_cluster_secret(wan_clusters, certs, tmp_path):  # noqa: F811
    """The link proves the target's cluster secret on its peer port, over TLS: with another
    secret (given to halyctl by file) every batch is refused, `halyctl wan status` says why
    and the target applies nothing; with the target's (by environment variable) the two
    converge. The secret is never shown. On the target's client port (the previous release's
    links, kept one release), a connection that proved the secret as a link runs only what a
    link sends, and the target's proof back checks out."""
    west_secret = "west-" + secrets.token_hex(12)
    west, east, to = tls_pair(wan_clusters, certs, {"cluster-secret": west_secret})
    missing = halyctl(east, "wan", "add", "dr", "--to", to, "--secret-file",
                      str(tmp_path / "none"))
    assert missing.returncode == 2 and "cannot read the secret file" in missing.stderr, missing
    twice = halyctl(east, "wan", "add", "dr", "--to", to, "--secret-file", "x", "--secret", "y")
    assert twice.returncode == 2 and "give the secret once" in twice.stderr, twice
    wrong = tmp_path / "wrong-secret"
    wrong.write_text(SECRET + "\n")  # east's own secret, not west's
    wait_for(lambda: halyctl(east, "wan", "add", "dr", "--to", to, "--link-tls",
                             "--secret-file", str(wrong)).returncode == 0, 30, "the link added")
    for i in range(20):
        assert cmd(east, "SET", "k:%d" % i, "v%d" % i) == "OK"
    refused = "the link's secret is not the target's cluster-secret (west at %s): refused" % to
    wait_for(lambda: refused in halyctl(east, "wan", "status").stdout, 30,
             "halyctl wan status to say the secret was refused", interval=0.2)
    # Every partition's batches are refused, each once it has tried (one that had not yet when
    # the first said so read as a failure: CI of 57a22d6).
    wait_for(lambda: all(refused in (p.get("last_error") or "")
                         for p in status(east)["links"][0]["partitions"]),
             30, "every partition's link to say the secret was refused", interval=0.2)
    assert content(west) == {}
    # The source refused the target's proof and told it why (REJECT): the target logs it.
    assert "did not prove the link's secret" in open(west.nodes[0].log_path).read()
    out = halyctl(east, "wan", "status")
    assert SECRET not in out.stdout and "secret: given" in out.stdout, out.stdout
    assert west_secret not in str(cmd(east, "CONFIG", "GET", "*"))

    # The target's cluster secret, from the environment: the link ships everything.
    env_run = dict(os.environ, WEST_SECRET=west_secret)
    exe = os.path.join(os.path.dirname(os.environ["HALYARD_BIN"]), "halyctl")
    p = subprocess.run([exe, "-p", str(east.ports[0]), "-a", "pe", "wan", "add", "dr", "--to",
                        to, "--link-tls", "--secret-env", "WEST_SECRET"], env=env_run,
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and west_secret not in p.stdout + p.stderr, p
    final = wait_same(east, west)
    assert len(final) == 20, final
    wait_for(lambda: all(p["last_error"] == "" for p in status(east)["links"][0]["partitions"]),
             30, "the failure to be cleared")
    assert "WAN link 'dr' from cluster 'east'" in open(west.nodes[0].log_path).read()

    # Deprecated, kept for one release (docs/multi-region.md "Migrating a link"): a source of
    # the previous release still links to the client port. By hand there: a wrong proof is
    # refused; the right one is answered with the target's proof, and the connection then runs
    # only what a link sends.
    with RawConn(west.ports[0], timeout=5.0) as r:
        nonce_t = text(r.cmd("HALYARD", "CHALLENGE"))
        nonce_s = secrets.token_hex(16)
        bad = r.cmd("HALYARD", "WAN-AUTH", "east", nonce_s,
                    wan_proof(SECRET, "source", "east", nonce_t, nonce_s))
        assert "its secret is not this cluster's cluster-secret" in str(bad), bad
        assert "NOAUTH" in str(r.cmd("GET", "k:1"))
        nonce_t = text(r.cmd("HALYARD", "CHALLENGE"))
        back = r.cmd("HALYARD", "WAN-AUTH", "east", nonce_s,
                     wan_proof(west_secret, "source", "east", nonce_t, nonce_s))
        assert text(back) == wan_proof(west_secret, "target", "east", nonce_t, nonce_s), back
        assert r.cmd("PING") == "PONG"
        assert [text(v) for v in r.cmd("CONFIG", "GET", "partitions")] == ["partitions", str(PARTS)]
        for refused_cmd in (("GET", "k:1"), ("CONFIG", "GET", "requirepass"), ("AUTH", "pw"),
                            ("HALYARD", "WAN", "STATUS")):
            got = r.cmd(*refused_cmd)
            assert "NOPERM this connection is a WAN link's" in str(got), (refused_cmd, got)


def test_link_to_a_client_port_says_to_name_the_peer_port(wan_clusters):  # noqa: F811
    """A link defined as before this release, with the target's client port, ships nothing and
    `halyctl wan status` says --to must name the peer ports; defined again under the same name
    with the peer port, it ships everything (docs/multi-region.md "Migrating a link")."""
    east, west = wan_clusters.two(PARTS)
    add_link(east, "127.0.0.1:%d" % west.ports[0], "SECRET", SECRET)
    for i in range(10):
        assert cmd(east, "SET", "m:%d" % i, "v%d" % i) == "OK"
    wait_for(lambda: "--to must name the target's peer ports" in halyctl(east, "wan",
                                                                          "status").stdout,
             30, "halyctl wan status to say the link needs the peer port", interval=0.2)
    assert content(west) == {}
    add_link(east, "127.0.0.1:%d" % peer(west), "SECRET", SECRET)
    final = wait_same(east, west)
    assert len(final) == 10, final


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def frame(ftype, payload):
    """A peer frame (docs/peer-protocol.md "Frame"): magic, version 1, type, flags, length,
    CRC32C over the header's first 12 bytes and the payload."""
    head = b"HYPW" + bytes([1, ftype, 0, 0]) + struct.pack("<I", len(payload))
    return head + struct.pack("<I", crc32c(head + payload)) + payload


def read_frame(s):
    """(type, payload) of the next frame on socket s; (None, b"") once it is closed."""
    def take(n):
        got = b""
        while len(got) < n:
            chunk = s.recv(n - len(got))
            if not chunk:
                return None
            got += chunk
        return got
    head = take(16)
    if head is None:
        return None, b""
    return head[5], take(struct.unpack("<I", head[8:12])[0]) or b""


def transcript(label, cluster, initiator, acceptor, nonce_i, nonce_a):
    out = b""
    for f in (label.encode(), cluster.encode(), initiator.encode(), acceptor.encode(), nonce_i,
              nonce_a):
        out += struct.pack("<I", len(f)) + f
    return out


def wan_handshake(port, secret):
    """A WAN link's handshake by hand on a peer port (source cluster 'east', link 'dr'):
    returns the socket, whether the target's proof checked out under `secret`, and the answer
    to the AUTH sent (its frame type and payload)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    nonce_s = secrets.token_bytes(32)
    s.sendall(frame(15, struct.pack("<I", 1) + bytes([4]) + b"east" + bytes([2]) + b"dr" + nonce_s))
    ftype, p = read_frame(s)
    assert ftype == 2, (ftype, p)  # CHALLENGE
    clen = p[4]
    cluster = p[5:5 + clen].decode()
    nlen = p[5 + clen]
    node = p[6 + clen:6 + clen + nlen].decode()
    nonce_t = p[6 + clen + nlen:38 + clen + nlen]
    mac_t = p[38 + clen + nlen:]
    key = secret.encode()
    want = hmac.new(key, transcript("halyard-wan-v1 target proof", cluster, "east", node, nonce_s,
                                    nonce_t), hashlib.sha256).digest()
    mac_s = hmac.new(key, transcript("halyard-wan-v1 source proof", cluster, "east", node, nonce_s,
                                     nonce_t), hashlib.sha256).digest()
    s.sendall(frame(3, mac_s))
    return s, hmac.compare_digest(want, mac_t), read_frame(s)


def test_link_connection_by_hand_runs_only_wan_frames(wan_clusters):  # noqa: F811
    """On a target member's peer port, by hand: a link proving another secret is refused by the
    target (REJECT auth, logged: the real source refuses first, on the target's proof); one
    proving the target's cluster secret is admitted without being a member, its WAN_PARTS is
    answered with the partition count, and a member's frame (FORWARD) on it closes it."""
    east, west = wan_clusters.two(PARTS)
    s, proved, (ftype, p) = wan_handshake(peer(west), "not-" + SECRET)
    assert not proved
    assert ftype == 5 and b"failed to prove the cluster secret" in p, (ftype, p)  # REJECT
    s.close()
    wait_for(lambda: "WAN link 'dr' of cluster 'east' failed to prove" in open(
        west.nodes[0].log_path).read(), 10, "the target to log the refusal")

    s, proved, (ftype, p) = wan_handshake(peer(west), SECRET)
    assert proved and ftype == 4, (ftype, p)  # WELCOME
    s.sendall(frame(18, struct.pack("<Q", 77)))  # WAN_PARTS
    ftype, p = read_frame(s)
    assert ftype == 19, (ftype, p)  # WAN_REPLY
    req, status_, value = struct.unpack("<QBq", p[:17])
    assert (req, status_, value) == (77, 0, PARTS), (req, status_, value)
    s.sendall(frame(9, struct.pack("<Q", 1) + b"*1\r\n$4\r\nPING\r\n"))  # a member's FORWARD
    assert read_frame(s)[0] is None  # closed
    s.close()
    log = open(west.nodes[0].log_path).read()
    assert "a WAN link may not send FORWARD" in log, log[-2000:]
    assert "accepted connection" not in log and "guest" not in log, log[-2000:]  # no peer
