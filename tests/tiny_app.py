"""A stdlib HTTP app for command-target tests: /health, and /chat answering "ok".

    python tiny_app.py PORT [--die-after N] [--pid-file PATH] [--ignore-term] [--events PATH]

With `--die-after N` it prints a last line and exits (code 3) after N chat answers, as an
app that crashes mid-run; with `--pid-file` it writes its pid there once listening;
`--ignore-term` makes it ignore SIGTERM (an app slow to stop); `--events PATH` gets a line
`answered` after its first chat answer and `term` for each SIGTERM ignored, for a test to
wait on.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(sys.argv[1])
DIE_AFTER = int(sys.argv[sys.argv.index("--die-after") + 1]) if "--die-after" in sys.argv else 0
PID_FILE = sys.argv[sys.argv.index("--pid-file") + 1] if "--pid-file" in sys.argv else None
EVENTS = sys.argv[sys.argv.index("--events") + 1] if "--events" in sys.argv else None
answered = 0
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self._reply(b"ok")

    def do_POST(self) -> None:
        global answered
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self._reply(b'{"answer": "ok"}')
        with lock:
            answered += 1
            if answered == 1:
                event("answered")
            if DIE_AFTER and answered >= DIE_AFTER:
                print("tiny app: out of memory, giving up", flush=True)
                os._exit(3)

    def _reply(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def event(line: str) -> None:
    if EVENTS:
        with open(EVENTS, "a") as handle:
            handle.write(line + "\n")


if "--ignore-term" in sys.argv:  # an app slow to stop: aichaos waits, then kills it
    signal.signal(signal.SIGTERM, lambda *_: event("term"))
server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
if PID_FILE:
    with open(PID_FILE, "w") as handle:
        handle.write(str(os.getpid()))
print("tiny app listening", flush=True)
server.serve_forever()
