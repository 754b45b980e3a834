#!/usr/bin/env python3
"""HTTP/2 by hand: one connection, S GET streams with SETTINGS_INITIAL_WINDOW_SIZE = 0; every
EVERY seconds one WINDOW_UPDATE of 1 byte per stream (and 1 byte on the connection), so each
response write makes "progress" just inside the write deadline. Prints, every EVERY seconds,
how many streams are still open and how many response DATA bytes came.

usage: h2_drip.py HOST:PORT AUTHORITY PATH STREAMS EVERY SECONDS [SOURCE_IP]"""
import socket, ssl, struct, sys, time

addr, authority, path = sys.argv[1], sys.argv[2], sys.argv[3]
streams, every, seconds = int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
source = sys.argv[7] if len(sys.argv) > 7 else "127.0.0.1"
host, port = addr.rsplit(":", 1)

def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload

def lit(i, v):
    v = v.encode(); return bytes([i, len(v)]) + v

block = b"\x82\x87" + (b"\x84" if path == "/" else lit(0x04, path)) + lit(0x01, authority)
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
ctx.set_alpn_protocols(["h2"])
raw = socket.socket(); raw.bind((source, 0)); raw.connect((host, int(port)))
s = ctx.wrap_socket(raw, server_hostname=authority)
s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, struct.pack(">HI", 4, 0) + struct.pack(">HI", 2, 0)))
live = set()
for i in range(streams):
    sid = 1 + 2 * i; live.add(sid); s.sendall(frame(1, 0x5, sid, block))
buf, data, start, next_tick = b"", 0, time.time(), time.time() + every
s.settimeout(0.2)
while time.time() - start < seconds and live:
    try:
        chunk = s.recv(65536)
        if not chunk: print("connection closed by the gateway"); break
        buf += chunk
    except socket.timeout:
        pass
    while len(buf) >= 9:
        ln = int.from_bytes(buf[0:3], "big"); kind, flags = buf[3], buf[4]
        sid = int.from_bytes(buf[5:9], "big") & 0x7fffffff
        if len(buf) < 9 + ln: break
        buf = buf[9 + ln:]
        if kind == 4 and not flags & 1: s.sendall(frame(4, 1, 0))
        if kind == 0: data += ln
        if (kind in (0, 1) and flags & 1) or kind == 3: live.discard(sid)
    if time.time() >= next_tick:
        next_tick += every
        out = frame(8, 0, 0, struct.pack(">I", len(live)))
        for sid in live: out += frame(8, 0, sid, struct.pack(">I", 1))
        s.sendall(out)
        print(f"t={time.time()-start:5.1f}s open streams={len(live)} data bytes={data}", flush=True)
