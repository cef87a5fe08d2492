#!/usr/bin/env python3
"""A webhook receiver for the alert tests: verifies Faultline's signature, records every request,
and answers as scripted.

    receiver.py --port 0 --secret SECRET     prints the port it listens on, then serves

POST /_script  {"responses": [{"status": 429, "retry_after": "2", "delay": 0}, ...], "default": {...}}
               the next requests get these answers in order, then the default (200).
GET  /_requests  every request so far: path, delivery, attempt, signature_ok, body, time.
Any other POST is a delivery.
"""
import argparse
import hashlib
import hmac
import json
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REPLAY_WINDOW = 300  # seconds


def verify(secret: bytes, header: str, body: bytes, now: float) -> bool:
    """The check README shows: HMAC-SHA256 over "<t>.<body>", compared in constant time,
    and a timestamp within five minutes."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        t = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - t) > REPLAY_WINDOW:
        return False
    expected = hmac.new(secret, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts.get("v1", ""))


class State:
    lock = threading.Lock()
    requests = []
    script = []
    default = {"status": 200}


def make_handler(secret: bytes):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # else every answer is ~40 ms late

        def log_message(self, *args):
            pass

        def _answer(self, status, body=b"", headers=()):
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path == "/_requests":
                with State.lock:
                    data = json.dumps(State.requests).encode()
                self._answer(200, data, [("Content-Type", "application/json")])
            else:
                self._answer(404)

        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            if self.path == "/_script":
                script = json.loads(body)
                with State.lock:
                    State.script = list(script.get("responses", []))
                    State.default = script.get("default", {"status": 200})
                self._answer(204)
                return
            with State.lock:
                answer = State.script.pop(0) if State.script else State.default
            signature = self.headers.get("Faultline-Signature", "")
            record = {
                "path": self.path,
                "delivery": self.headers.get("Faultline-Delivery"),
                "attempt": self.headers.get("Faultline-Attempt"),
                "content_type": self.headers.get("Content-Type"),
                "signature_ok": verify(secret, signature, body, time.time()),
                "body": body.decode("utf-8"),
                "time": time.time(),
                "status": answer.get("status", 200),
            }
            delay = answer.get("delay", 0)
            if delay:
                time.sleep(delay)
            with State.lock:
                State.requests.append(record)
            headers = []
            if answer.get("retry_after") is not None:
                headers.append(("Retry-After", str(answer["retry_after"])))
            self._answer(answer.get("status", 200), b"ok", headers)

    return Handler


def main():
    # A parent may have started us with signals blocked (the mask is inherited): unblock them,
    # so SIGTERM ends the receiver.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM, signal.SIGINT])
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--secret", default="")
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(args.secret.encode()))
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
