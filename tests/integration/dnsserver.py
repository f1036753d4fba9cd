"""A tiny authoritative DNS server for discovery tests (RFC 1035 messages over UDP): it answers
A queries from `a` ({name: [ipv4, ...]}) and SRV queries from `srv` ({name: [(priority,
weight, port, target), ...]}), anything else with NXDOMAIN. Started on a socket the caller
binds (inside a test's network namespace, whose resolv.conf names it), stopped with stop()."""

import socket
import struct
import threading


def encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def parse_query(data):
    """(id, flags, qname, qtype, end of the question) of a query."""
    qid, flags = struct.unpack(">HH", data[:4])
    at, labels = 12, []
    while data[at] != 0:
        n = data[at]
        labels.append(data[at + 1:at + 1 + n].decode())
        at += 1 + n
    qtype = struct.unpack(">H", data[at + 1:at + 3])[0]
    return qid, flags, ".".join(labels), qtype, at + 5


def build_reply(query, a=None, srv=None):
    """The reply to `query` (bytes) from the tables; answers point at the question's name."""
    a, srv = a or {}, srv or {}
    qid, flags, qname, qtype, qend = parse_query(query)
    answers = []
    key = qname.lower()
    if qtype == 1:
        for ip in a.get(key, []):
            answers.append(struct.pack(">HHHIH", 0xC00C, 1, 1, 5, 4) + socket.inet_aton(ip))
    elif qtype == 33:
        for prio, weight, port, target in srv.get(key, []):
            rdata = struct.pack(">HHH", prio, weight, port) + encode_name(target)
            answers.append(struct.pack(">HHHIH", 0xC00C, 33, 1, 5, len(rdata)) + rdata)
    known = key in a or key in srv
    rcode = 0 if known else 3  # NXDOMAIN
    rflags = 0x8000 | 0x0400 | (flags & 0x0100) | 0x0080 | rcode  # QR AA RD RA
    header = struct.pack(">HHHHHH", qid, rflags, 1, len(answers), 0, 0)
    return header + query[12:qend] + b"".join(answers)


class DnsServer:
    def __init__(self, sock, a=None, srv=None):
        self.sock, self.a, self.srv = sock, a or {}, srv or {}
        self.queries = []
        self.sock.settimeout(0.1)
        self._stop = False
        self.thread = threading.Thread(target=self._run, name="dns", daemon=True)
        self.thread.start()

    def _run(self):
        while not self._stop:
            try:
                data, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                self.queries.append(parse_query(data)[2:4])
                self.sock.sendto(build_reply(data, self.a, self.srv), peer)
            except (IndexError, struct.error, UnicodeDecodeError):
                continue  # not a query we understand: no answer

    def stop(self):
        self._stop = True
        self.thread.join(timeout=5)
        self.sock.close()
