#!/usr/bin/env python3
"""cql_ready.py HOST PORT: runs `SELECT release_version FROM system.local` over the CQL
native protocol (v4, no driver needed) and prints the version. Exit 0 only on a real answer."""
import socket
import struct
import sys


def frame(stream, opcode, body):
    return struct.pack(">BBhBi", 4, 0, stream, opcode, len(body)) + body


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk
    return buf


def read_frame(sock):
    _, _, _, opcode, length = struct.unpack(">BBhBi", recv_exact(sock, 9))
    body = recv_exact(sock, length)
    if opcode == 0x00:
        code, mlen = struct.unpack(">ih", body[:6])
        raise RuntimeError("CQL error 0x%04x: %s" % (code, body[6:6 + mlen].decode()))
    return opcode, body


def string(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(frame(1, 0x01, struct.pack(">h", 1) + string("CQL_VERSION") + string("3.0.0")))
        opcode, _ = read_frame(s)
        if opcode != 0x02:
            raise RuntimeError("STARTUP answered opcode 0x%02x, not READY" % opcode)
        q = b"SELECT release_version FROM system.local"
        s.sendall(frame(2, 0x07, struct.pack(">i", len(q)) + q + struct.pack(">hB", 1, 0)))
        opcode, body = read_frame(s)
        kind, flags, ncols = struct.unpack(">iii", body[:12])
        if opcode != 0x08 or kind != 2 or ncols != 1:
            raise RuntimeError("unexpected answer: opcode 0x%02x kind %d" % (opcode, kind))
        pos = 12
        if flags & 0x0002:  # paging state
            (n,) = struct.unpack(">i", body[pos:pos + 4])
            pos += 4 + max(n, 0)
        def skip_string():
            nonlocal pos
            (n,) = struct.unpack(">h", body[pos:pos + 2])
            pos += 2 + n
        if flags & 0x0004 == 0:
            skip_string(); skip_string()  # keyspace, table (global spec or the one column's)
            skip_string()  # column name
            pos += 2  # type id (varchar: no parameters)
        (nrows,) = struct.unpack(">i", body[pos:pos + 4])
        pos += 4
        if nrows != 1:
            raise RuntimeError("system.local returned %d rows" % nrows)
        (n,) = struct.unpack(">i", body[pos:pos + 4])
        print(body[pos + 4:pos + 4 + n].decode())


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - the caller polls; say why on stderr
        print("cql_ready: %s" % e, file=sys.stderr)
        sys.exit(1)
