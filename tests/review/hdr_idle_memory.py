# Review hdr: idle TLS connections held against a running gateway (its HTTPS port, pid, CA), RSS per
# connection by mode. Run against a gateway with max_connections(_per_address) and
# max_pending_connections(_per_address) above N and idle_timeout: 1h (as benches/connections.rs
# configures it); old allocator settings emulated with MALLOC_CONF=tcache_max:4096 and
# server.read_buffer: 16896. Results (debug build, N=1000): see the review report.
# Idle TLS connections against a gateway: RSS per connection, by mode.
# usage: python3 idle.py PORT PID CA N MODE   (MODE: idle | partial | h2 | h2partial)
import socket, ssl, sys, time
port, pid, ca, n, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
HOST = "acq.bankart.localhost"
def rss():
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS"): return int(l.split()[1])
ctx = ssl.create_default_context(cafile=ca)
ctx.set_alpn_protocols(["h2"] if mode.startswith("h2") else ["http/1.1"])
def pump(s, obj, out):
    data = out.read()
    if data: s.sendall(data)
def open_one():
    s = socket.create_connection(("127.0.0.1", port))
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    o = ctx.wrap_bio(inc, out, server_hostname=HOST)
    while True:
        try:
            o.do_handshake(); break
        except ssl.SSLWantReadError:
            pump(s, o, out)
            d = s.recv(65536)
            if not d: raise EOFError
            inc.write(d)
    pump(s, o, out)
    if mode.startswith("h2"):
        # preface + SETTINGS, then a HEADERS-less idle connection (HPACK not needed)
        o.write(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        pump(s, o, out)
        s.settimeout(2)
        try:
            inc.write(s.recv(65536))
        except Exception: pass
    else:
        o.write(f"GET /x HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
        pump(s, o, out)
        buf = b""
        s.settimeout(10)
        while b"\r\n\r\n" not in buf:
            d = s.recv(65536)
            if not d: raise EOFError
            inc.write(d)
            try:
                while True: buf += o.read(65536)
            except ssl.SSLWantReadError: pass
        # the body: read what is there
        time.sleep(0.001)
    if mode.endswith("partial"):
        o.write(b"G" * 16000)          # one 16 KB record
        rec = out.read()
        s.sendall(rec[: len(rec) - 1])  # all but its last byte: OpenSSL must hold it
    return s, o
time.sleep(1)
before = rss()
held, failed = [], 0
t = time.time()
for i in range(n):
    try: held.append(open_one())
    except Exception as e:
        failed += 1
        if failed < 4: print("fail", e)
print(f"opened {len(held)} ({failed} failed) in {time.time()-t:.1f}s", flush=True)
time.sleep(10)
after = rss()
print(f"mode={mode} before={before} KiB holding={after} KiB per-conn={(after-before)*1024/max(1,len(held)):.0f} bytes", flush=True)
for s, _ in held: s.close()
time.sleep(5)
print(f"after close {rss()} KiB")
