"""A WAN link over TLS (issue 18; docs/wan.md "Transport"): the source connects to the
target's TLS client port, checks the target's certificate against a CA (the link's, or the
member's tls-ca-cert-file) and shows its own certificate (the target has tls-auth-clients
yes), then authenticates with the target's password, over real processes on 127.0.0.1.
Certificates are made by the openssl CLI (test_tls_cluster's fixture)."""

import os

import pytest

from conftest import free_port, wait_for
from test_tls_cluster import certs  # noqa: F401 (a fixture)
from wan_pairs import add_link, cmd, content, halyctl, status, wait_same
from wan_pairs import wan_clusters  # noqa: F401 (a fixture)

pytestmark = pytest.mark.halyard_only

PARTS = 2


def test_link_over_tls_checks_the_target_and_ships(wan_clusters, certs):  # noqa: F811
    """A link whose CA did not sign the target's certificate ships nothing (each batch fails,
    the target stays empty); the same link with TLS against the member's own CA ships every
    change through the target's TLS port only, and halyctl shows it (it fails when the link
    speaks clear text to the TLS port, or does not check the certificate)."""
    ca = os.path.join(certs, "ca.crt")
    tls_port = free_port()
    west = wan_clusters.cluster(1, {
        "partitions": PARTS, "cluster-name": "west", "requirepass": "pw", "tls-port": tls_port,
        "tls-cert-file": os.path.join(certs, "node.crt"),
        "tls-key-file": os.path.join(certs, "node.key"), "tls-ca-cert-file": ca})
    east = wan_clusters.cluster(1, {
        "partitions": PARTS, "cluster-name": "east", "requirepass": "pe",
        "tls-cert-file": os.path.join(certs, "node2.crt"),
        "tls-key-file": os.path.join(certs, "node2.key"), "tls-ca-cert-file": ca})
    to = "127.0.0.1:%d" % tls_port

    add_link(east, to, "SECRET", "pw", "CA", os.path.join(certs, "other-ca.crt"))
    for i in range(20):
        assert cmd(east, "SET", "k:%d" % i, "v%d" % i) == "OK"
    wait_for(lambda: any(p["failures"] > 0 for p in status(east)["links"][0]["partitions"]),
             30, "the link's batches to fail the certificate check", interval=0.2)
    link = status(east)["links"][0]
    assert link["tls"] and link["tls_ca"].endswith("other-ca.crt"), link
    assert content(west) == {}
    log = open(east.nodes[0].log_path).read()
    assert "TLS handshake with 127.0.0.1:%d failed" % tls_port in log, log[-2000:]

    # The member's CA (tls-ca-cert-file) signed the target's certificate: the link ships.
    add_link(east, to, "SECRET", "pw", "TLS")
    final = wait_same(east, west)
    assert len(final) == 20 and final["k:3"] == ("string", "v3"), final
    assert cmd(east, "SET", "after", "tls") == "OK"
    wait_for(lambda: content(west).get("after") == ("string", "tls"), 30, "a later change")
    link = status(east)["links"][0]
    assert link["tls"] and link["tls_ca"] == "", link
    out = halyctl(east, "wan", "status").stdout
    assert "tls: yes" in out, out
