#!/usr/bin/env python3
"""A plain upstream for the reviews: HTTP/1.1, every GET answered 200 with a 16 KiB page;
prints how many connections it has open every second. usage: upstream.py PORT"""
import sys, threading, time
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler

open_conns = 0
peak = 0
lock = threading.Lock()
BODY = b"x" * 16384

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def setup(self):
        global open_conns, peak
        with lock:
            open_conns += 1; peak = max(peak, open_conns)
        super().setup()
    def finish(self):
        global open_conns
        try: super().finish()
        finally:
            with lock: open_conns -= 1
    def do_GET(self):
        n = self.headers.get("Content-Length")
        if n: self.rfile.read(int(n))
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)
    do_POST = do_GET
    def log_message(self, *a): pass

class S(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 4096

srv = S(("127.0.0.1", int(sys.argv[1])), H)
def report():
    while True:
        time.sleep(1)
        with lock: print(f"upstream open={open_conns} peak={peak}", flush=True)
threading.Thread(target=report, daemon=True).start()
srv.serve_forever()
