#!/usr/bin/env python3
"""N silent TCP connections (no ClientHello) from each of the given source addresses, held
for SECONDS; reconnects any that the gateway closes. usage: pending_fill.py HOST:PORT N SECONDS SRC..."""
import socket, sys, time, selectors
addr, n, seconds, sources = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]
host, port = addr.rsplit(":", 1); port = int(port)
def conn(src):
    s = socket.socket(); s.bind((src, 0)); s.setblocking(False)
    try: s.connect((host, port))
    except BlockingIOError: pass
    return s
sel = selectors.DefaultSelector()
def add(src):
    s = conn(src); sel.register(s, selectors.EVENT_READ, src)
for src in sources:
    for _ in range(n): add(src)
stop = time.time() + seconds
while time.time() < stop:
    for key, _ in sel.select(0.5):
        s = key.fileobj
        try: d = s.recv(1)
        except BlockingIOError: continue
        except Exception: d = b""
        if not d:
            sel.unregister(s); s.close(); add(key.data)
