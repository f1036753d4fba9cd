"""TLS on the client port (issue 16, first slice), tested with the real tools: certificates made
by openssl, redis-cli --tls, openssl s_client, python3-redis over ssl."""

import os
import socket
import ssl
import subprocess

import pytest
import redis

from conftest import free_port, wait_for


def openssl(*args, cwd):
    r = subprocess.run(["openssl"] + list(args), cwd=cwd, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate, all signed
    by the CA; and a second CA that signed nothing of ours."""
    d = str(tmp_path_factory.mktemp("certs"))
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", *ec, "-keyout", ca + ".key", "-out", ca + ".crt", "-days", "2",
                "-subj", "/CN=halyard test " + ca, cwd=d)
    with open(os.path.join(d, "san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for who, ca in (("server", "ca"), ("client", "ca"), ("server2", "other-ca")):
        openssl("req", *ec, "-keyout", who + ".key", "-out", who + ".csr", "-subj",
                "/CN=" + who, cwd=d)
        openssl("x509", "-req", "-in", who + ".csr", "-CA", ca + ".crt", "-CAkey", ca + ".key",
                "-CAcreateserial", "-out", who + ".crt", "-days", "2", "-extfile", "san.ext",
                cwd=d)
    return d


def tls_flags(certs, port, **extra):
    flags = {"tls-port": port, "tls-cert-file": os.path.join(certs, "server.crt"),
             "tls-key-file": os.path.join(certs, "server.key"),
             "tls-ca-cert-file": os.path.join(certs, "ca.crt")}
    flags.update(extra)
    return flags


def redis_cli(certs, port, *cmd, client_cert=True):
    argv = ["redis-cli", "--tls", "--cacert", os.path.join(certs, "ca.crt"), "-p", str(port)]
    if client_cert:
        argv += ["--cert", os.path.join(certs, "client.crt"), "--key",
                 os.path.join(certs, "client.key")]
    return subprocess.run(argv + list(cmd), capture_output=True, text=True, timeout=30)


def test_redis_cli_over_mutual_tls(servers, certs):
    """With a client certificate signed by the CA, redis-cli --tls writes and reads; the plain
    port goes on serving; without a client certificate the handshake is refused."""
    port = free_port()
    s = servers.start(tls_flags(certs, port))
    r = redis_cli(certs, port, "SET", "tls:k", "over tls")
    assert r.returncode == 0 and r.stdout.strip() == "OK", r.stdout + r.stderr
    r = redis_cli(certs, port, "GET", "tls:k")
    assert r.stdout.strip() == "over tls", r.stdout + r.stderr
    assert s.client().get("tls:k") == "over tls"   # the plain port, same data
    r = redis_cli(certs, port, "PING", client_cert=False)
    assert "PONG" not in r.stdout, r.stdout
    assert s.client().ping()                        # the refusal hurt nobody


def test_python_client_without_certificate_when_not_required(servers, certs):
    """tls-auth-clients no: a client that only checks the server's certificate is served,
    pipelines and large values included."""
    port = free_port()
    servers.start(tls_flags(certs, port, **{"tls-auth-clients": "no"}))
    r = redis.Redis("127.0.0.1", port, ssl=True, ssl_ca_certs=os.path.join(certs, "ca.crt"),
                    socket_timeout=10)
    big = os.urandom(3 * 1024 * 1024)
    assert r.set("big", big)
    assert r.get("big") == big
    p = r.pipeline(transaction=False)
    for i in range(500):
        p.incr("ctr")
    assert p.execute()[-1] == 500


def test_client_certificate_from_another_ca_is_refused(servers, certs):
    """A server certificate's CA is not enough: a client certificate must be signed by
    tls-ca-cert-file's CA (here the server trusts only other-ca, so ours fails)."""
    port = free_port()
    servers.start(tls_flags(certs, port, **{"tls-ca-cert-file": os.path.join(certs, "other-ca.crt")}))
    r = redis_cli(certs, port, "PING")
    assert "PONG" not in r.stdout, r.stdout


def test_protocol_versions(servers, certs):
    """tls-protocols TLSv1.3: a TLS 1.2 handshake is refused, a TLS 1.3 one accepted."""
    port = free_port()
    servers.start(tls_flags(certs, port, **{"tls-auth-clients": "no", "tls-protocols": "TLSv1.3"}))

    def handshake(version):
        r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, version,
                            "-CAfile", os.path.join(certs, "ca.crt"), "-verify_return_error"],
                           input="", capture_output=True, text=True, timeout=30)
        return "Verify return code: 0 (ok)" in r.stdout and "Cipher is (NONE)" not in r.stdout

    assert handshake("-tls1_3")
    assert not handshake("-tls1_2")


def test_plaintext_to_the_tls_port_is_dropped(servers, certs):
    """RESP in clear text on the TLS port is not a handshake: the connection closes and the
    server goes on."""
    port = free_port()
    s = servers.start(tls_flags(certs, port, **{"tls-auth-clients": "no"}))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"*1\r\n$4\r\nPING\r\n")
        data = b""
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        assert b"PONG" not in data
    ctx = ssl.create_default_context(cafile=os.path.join(certs, "ca.crt"))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(b"*1\r\n$4\r\nPING\r\n")
            assert tls.recv(100) == b"+PONG\r\n"
    assert s.client().ping()


def test_bad_certificate_stops_the_start(servers, certs, tmp_path):
    """A key that does not match the certificate: the server refuses to start and says why."""
    port = free_port()
    s = servers.start(tls_flags(certs, port, **{"tls-key-file": os.path.join(certs, "client.key")}),
                      ready=False)
    assert s.wait_exit(20) not in (None, 0)
    assert "tls-key-file" in s.log_tail(), s.log_tail()
    s._stopped = True


def load(certs, port, n, *extra):
    exe = os.path.join(os.path.dirname(os.environ["HALYARD_BIN"]), "tools", "hy_client_load")
    r = subprocess.run([exe, "127.0.0.1:%d" % port, "tls:ctr", str(n), "--timeout-ms", "1000",
                        "--tls-ca", os.path.join(certs, "ca.crt")] + list(extra),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    done = [l for l in r.stdout.splitlines() if l.startswith("done ")][0]
    return {k: int(v) for k, v in (kv.split("=") for kv in done.split()[1:])}


def test_libhalyard_over_mutual_tls(servers, certs):
    """libhalyard with a client certificate: every INCR through TLS, exactly once. Without a
    certificate, or checking the server against a name its certificate does not carry, it
    cannot connect: every request ends not applied."""
    port = free_port()
    s = servers.start(tls_flags(certs, port))
    done = load(certs, port, 200, "--tls-cert", os.path.join(certs, "client.crt"), "--tls-key",
                os.path.join(certs, "client.key"))
    assert done["ok"] == 200 and done["last"] == 200, done
    assert s.client().get("tls:ctr") == "200"
    assert load(certs, port, 3)["not_applied"] == 3                   # no client certificate
    assert load(certs, port, 3, "--tls-cert", os.path.join(certs, "client.crt"), "--tls-key",
                os.path.join(certs, "client.key"), "--tls-name", "elsewhere.example")[
        "not_applied"] == 3                                           # wrong server name
    assert s.client().get("tls:ctr") == "200"


def test_libhalyard_heartbeats_over_tls(servers, certs):
    """Heartbeats over TLS: during a warm-up the heartbeat thread PINGs the member over its own
    TLS connection; the server reads them (its command count grows by more than the INCRs and
    the session's opening) and answers them (no member was found dead)."""
    port = free_port()
    s = servers.start(tls_flags(certs, port))
    before = int(s.client().info("stats")["total_commands_processed"])
    done = load(certs, port, 20, "--tls-cert", os.path.join(certs, "client.crt"), "--tls-key",
                os.path.join(certs, "client.key"), "--heartbeat-ms", "50,2000",
                "--warmup-ms", "800")
    after = int(s.client().info("stats")["total_commands_processed"])
    assert done["ok"] == 20 and done["heartbeat_downs"] == 0, done
    # 800 ms at one PING per 50 ms: about 16 before the first INCR; counted with a wide margin
    # (the commands of the two INFO calls, the session's opening).
    assert after - before >= 20 + 8, (before, after)


def served_by(certs, port, ca):
    """Whether a TLS client trusting only `ca` gets PONG from the port."""
    r = subprocess.run(["redis-cli", "--tls", "--cacert", os.path.join(certs, ca), "-p",
                        str(port), "PING"], capture_output=True, text=True, timeout=30)
    return r.stdout.strip() == "PONG"


def test_certificate_reload_without_restart(servers, certs, tmp_path):
    """CONFIG SET tls-cert-file/tls-key-file loads a new certificate for new connections (an
    open one goes on); a certificate that cannot be loaded is refused with the reason and the
    old one stays; SIGHUP reloads the files in place."""
    import shutil
    import signal
    crt, key = str(tmp_path / "live.crt"), str(tmp_path / "live.key")
    shutil.copy(os.path.join(certs, "server.crt"), crt)
    shutil.copy(os.path.join(certs, "server.key"), key)
    port = free_port()
    s = servers.start(tls_flags(certs, port, **{"tls-auth-clients": "no", "tls-cert-file": crt,
                                                "tls-key-file": key}))
    assert served_by(certs, port, "ca.crt") and not served_by(certs, port, "other-ca.crt")
    kept = redis.Redis("127.0.0.1", port, ssl=True, ssl_ca_certs=os.path.join(certs, "ca.crt"),
                       socket_timeout=10)
    assert kept.ping()
    c = s.client()
    # A certificate without its key, and a file that is not there: refused, nothing changes.
    with pytest.raises(redis.ResponseError, match="tls-key-file"):
        c.config_set("tls-cert-file", os.path.join(certs, "server2.crt"))
    with pytest.raises(redis.ResponseError, match="tls-cert-file"):
        c.config_set("tls-cert-file", str(tmp_path / "missing.crt"))
    assert c.config_get("tls-cert-file")["tls-cert-file"] == crt
    assert served_by(certs, port, "ca.crt")
    # Both at once: new connections get the certificate of the other CA.
    assert c.execute_command("CONFIG", "SET", "tls-cert-file",
                             os.path.join(certs, "server2.crt"), "tls-key-file",
                             os.path.join(certs, "server2.key")) == "OK"
    assert served_by(certs, port, "other-ca.crt") and not served_by(certs, port, "ca.crt")
    assert kept.ping()   # the open connection goes on
    # Back to the live files, then replace them in place and send SIGHUP.
    assert c.execute_command("CONFIG", "SET", "tls-cert-file", crt, "tls-key-file", key) == "OK"
    assert served_by(certs, port, "ca.crt")
    shutil.copy(os.path.join(certs, "server2.crt"), crt)
    shutil.copy(os.path.join(certs, "server2.key"), key)
    s.send_signal(signal.SIGHUP)
    wait_for(lambda: served_by(certs, port, "other-ca.crt"), 10,
             "SIGHUP to load the replaced files")
    # A broken file and SIGHUP: the reload fails, is logged, and the old certificate stays.
    with open(crt, "w") as f:
        f.write("not a certificate\n")
    s.send_signal(signal.SIGHUP)
    wait_for(lambda: "TLS reload failed" in s.log_tail(), 10, "the failed reload to be logged")
    assert served_by(certs, port, "other-ca.crt")


def test_port_0_turns_the_plain_port_off(servers, certs):
    """port 0 with tls-port: clients are served over TLS only (redis-cli --tls, openssl
    s_client); nothing listens in clear text. port 0 without tls-port refuses to start."""
    tls_port, http_port = free_port(), free_port()
    flags = tls_flags(certs, tls_port, **{"http-port": http_port, "tls-auth-clients": "no"})
    flags["port"] = 0
    s = servers.start(flags, ready=False)
    wait_for(lambda: redis_cli(certs, tls_port, "PING", client_cert=False).stdout.strip() == "PONG",
             20, "the TLS port to serve")
    r = redis_cli(certs, tls_port, "SET", "only", "tls", client_cert=False)
    assert r.stdout.strip() == "OK", r.stdout + r.stderr
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", s.port), timeout=5).close()
    r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % tls_port, "-CAfile",
                        os.path.join(certs, "ca.crt"), "-verify_return_error"],
                       input="", capture_output=True, text=True, timeout=30)
    assert "Verify return code: 0 (ok)" in r.stdout, r.stdout
    assert "TLS only: port 0" in s.log_tail()
    bad = servers.start({"port": 0}, ready=False)
    assert bad.wait_exit(20) not in (None, 0)
    assert "port 0 turns the plain client port off" in bad.log_tail(), bad.log_tail()
    bad._stopped = True


def curl(certs, url, ca):
    return subprocess.run(["curl", "-sS", "--max-time", "10", "--cacert", os.path.join(certs, ca),
                           "-o", "/dev/null", "-w", "%{http_code}", url],
                          capture_output=True, text=True, timeout=30)


def test_tls_http_serves_https_and_reloads(servers, certs):
    """tls-http yes: /health and /metrics over HTTPS with the client port's certificate (curl
    --cacert, openssl s_client), no clear-text HTTP; CONFIG SET of the certificate reloads it
    for new HTTPS connections too, and a bad one is refused with the old one kept."""
    tls_port, http_port = free_port(), free_port()
    s = servers.start(tls_flags(certs, tls_port, **{"tls-http": "yes", "http-port": http_port,
                                                    "tls-auth-clients": "no"}))
    url = "https://localhost:%d/health/live" % http_port
    wait_for(lambda: curl(certs, url, "ca.crt").stdout == "200", 10, "HTTPS /health/live")
    assert curl(certs, "https://localhost:%d/metrics" % http_port, "ca.crt").stdout == "200"
    assert curl(certs, url, "other-ca.crt").stdout != "200"      # the server's CA is checked
    plain = subprocess.run(["curl", "-sS", "--max-time", "5", "http://127.0.0.1:%d/health/live"
                            % http_port], capture_output=True, text=True, timeout=30)
    assert "ok" not in plain.stdout.lower() or plain.returncode != 0
    r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % http_port, "-tls1_2",
                        "-CAfile", os.path.join(certs, "ca.crt"), "-verify_return_error"],
                       input="", capture_output=True, text=True, timeout=30)
    assert "Verify return code: 0 (ok)" in r.stdout, r.stdout
    c = s.client()
    with pytest.raises(redis.ResponseError):
        c.execute_command("CONFIG", "SET", "tls-cert-file", os.path.join(certs, "server2.crt"))
    assert curl(certs, url, "ca.crt").stdout == "200"             # the old one stayed
    assert c.execute_command("CONFIG", "SET", "tls-cert-file", os.path.join(certs, "server2.crt"),
                             "tls-key-file", os.path.join(certs, "server2.key")) == "OK"
    assert curl(certs, url, "other-ca.crt").stdout == "200"
    assert curl(certs, url, "ca.crt").stdout != "200"
    assert served_by(certs, tls_port, "other-ca.crt")             # both ports moved together


def test_halyctl_over_tls(servers, certs):
    """halyctl --tls verifies the node against --cacert and shows its client certificate; a
    node whose certificate does not name the host it was asked for is refused."""
    port = free_port()
    servers.start(tls_flags(certs, port))
    exe = os.path.join(os.path.dirname(os.environ["HALYARD_BIN"]), "halyctl")
    base = [exe, "-h", "127.0.0.1", "-p", str(port), "--tls", "--cacert",
            os.path.join(certs, "ca.crt")]
    mine = ["--cert", os.path.join(certs, "client.crt"), "--key", os.path.join(certs, "client.key")]
    r = subprocess.run(base + mine + ["--json", "cluster", "status"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0 and '"role"' in r.stdout, r.stdout + r.stderr
    r = subprocess.run(base + ["cluster", "status"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2, r.stdout + r.stderr  # tls-auth-clients yes: no certificate, no entry
    r = subprocess.run(base + mine + ["--sni", "elsewhere.example", "cluster", "status"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "hostname mismatch" in r.stderr.lower(), r.stdout + r.stderr


def s_client(certs, port, *args):
    r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-CAfile",
                        os.path.join(certs, "ca.crt"), "-verify_return_error"] + list(args),
                       input="", capture_output=True, text=True, timeout=30)
    return r.returncode == 0, r.stdout + r.stderr


def test_cipher_settings(servers, certs):
    """tls-ciphersuites limits TLS 1.3 suites and tls-ciphers TLS 1.2 ciphers: a client offering
    only others is refused, one offering an allowed one is served."""
    port = free_port()
    servers.start(tls_flags(certs, port, **{
        "tls-auth-clients": "no", "tls-ciphersuites": "TLS_CHACHA20_POLY1305_SHA256",
        "tls-ciphers": "ECDHE-ECDSA-AES128-GCM-SHA256", "tls-prefer-server-ciphers": "yes"}))
    ok, out = s_client(certs, port, "-tls1_3", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256")
    assert ok and "TLS_CHACHA20_POLY1305_SHA256" in out, out
    assert not s_client(certs, port, "-tls1_3", "-ciphersuites", "TLS_AES_256_GCM_SHA384")[0]
    ok, out = s_client(certs, port, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256")
    assert ok and "ECDHE-ECDSA-AES128-GCM-SHA256" in out, out
    assert not s_client(certs, port, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384")[0]


def test_bad_cipher_setting_is_refused(servers, certs):
    port = free_port()
    s = servers.start(tls_flags(certs, port, **{"tls-ciphers": "NO-SUCH-CIPHER"}), ready=False)
    assert s.wait_exit(20) not in (None, 0)
    assert "tls-ciphers" in s.log_tail(), s.log_tail()
    s._stopped = True


def test_ca_cert_dir(servers, certs, tmp_path):
    """tls-ca-cert-dir (a directory made by openssl rehash) verifies client certificates in
    place of tls-ca-cert-file."""
    d = tmp_path / "cas"
    d.mkdir()
    with open(os.path.join(certs, "ca.crt")) as f:
        (d / "ca.pem").write_text(f.read())
    subprocess.run(["openssl", "rehash", str(d)], check=True, capture_output=True, timeout=30)
    port = free_port()
    servers.start(tls_flags(certs, port, **{"tls-ca-cert-file": "", "tls-ca-cert-dir": str(d)}))
    r = redis_cli(certs, port, "PING")
    assert r.stdout.strip() == "PONG", r.stdout + r.stderr
    assert redis_cli(certs, port, "PING", client_cert=False).stdout.strip() != "PONG"


@pytest.mark.parametrize("caching", ["yes", "no"])
def test_session_caching(servers, certs, tmp_path, caching):
    """tls-session-caching yes: a client that kept its session resumes it (no certificate
    exchange); no: every handshake is a new one."""
    port = free_port()
    servers.start(tls_flags(certs, port, **{"tls-auth-clients": "no",
                                            "tls-session-caching": caching}))
    sess = str(tmp_path / "sess")
    ok, out = s_client(certs, port, "-tls1_2", "-sess_out", sess)
    assert ok, out
    if caching == "no" and not os.path.exists(sess):
        return  # the server gave no session (id or ticket) at all: nothing can resume
    ok, out = s_client(certs, port, "-tls1_2", "-sess_in", sess)
    assert ok, out
    assert ("Reused, TLSv1.2" in out) == (caching == "yes"), out
