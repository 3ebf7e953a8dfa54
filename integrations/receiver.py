"""A sample receiver of Allot's outbound messages, for WMS/ERP integrators and for tests.

It listens for ``POST`` requests, verifies ``X-Allot-Signature`` over ``X-Allot-Timestamp`` and
the raw body with the shared secret (``integrations.signing``), refuses a bad signature or a
stale timestamp with ``401``, de-duplicates on the message ``id`` (a retried message is answered
``200`` and reported as a duplicate, never handled twice), and writes one JSON line per
delivery to ``out``: ``{"status": "accepted"|"duplicate"|"refused", "id", "type", "data"|"reason"}``.
``python manage.py outbox_receiver --port N --secret S`` runs it.
"""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO

from integrations import signing

MAX_BODY = 10 * 1024 * 1024


class ReceiverServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], *, secret: str, out: IO[str], max_age_seconds: int = 300,
                 stop_after: int | None = None) -> None:
        super().__init__(address, _Handler)
        self.secret = secret
        self.out = out
        self.max_age_seconds = max_age_seconds
        self.stop_after = stop_after
        self.seen: set[str] = set()
        self.accepted = 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/messages"

    def report(self, entry: dict) -> None:
        with self.lock:
            self.out.write(json.dumps(entry, sort_keys=True) + "\n")
            self.out.flush()


class _Handler(BaseHTTPRequestHandler):
    server: ReceiverServer

    def _answer(self, status: int, body: dict) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self._answer(413, {"detail": "body missing or too large"})
            return
        body = self.rfile.read(length)
        problem = signing.verify(
            self.server.secret, self.headers.get(signing.TIMESTAMP_HEADER, ""), self.headers.get(signing.SIGNATURE_HEADER, ""),
            body, max_age_seconds=self.server.max_age_seconds,
        )
        if problem:
            self.server.report({"status": "refused", "reason": problem})
            self._answer(401, {"detail": problem})
            return
        try:
            envelope = json.loads(body)
            message_id, message_type = str(envelope["id"]), str(envelope["type"])
        except (ValueError, KeyError, TypeError):
            self.server.report({"status": "refused", "reason": "not a message envelope"})
            self._answer(400, {"detail": "not a message envelope"})
            return
        with self.server.lock:
            duplicate = message_id in self.server.seen
            self.server.seen.add(message_id)
            if not duplicate:
                self.server.accepted += 1
            done = self.server.stop_after is not None and self.server.accepted >= self.server.stop_after
        status = "duplicate" if duplicate else "accepted"
        self.server.report({"status": status, "id": message_id, "type": message_type, "data": envelope.get("data")})
        self._answer(200, {"status": status, "id": message_id})
        if done and not duplicate:
            threading.Thread(target=self.server.shutdown, daemon=True).start()

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - quiet: the JSON lines are the log
        pass


def make_server(*, host: str = "127.0.0.1", port: int = 0, secret: str, out: IO[str], max_age_seconds: int = 300,
                stop_after: int | None = None) -> ReceiverServer:
    """A receiver bound to ``host:port`` (0: any free port); call ``serve_forever``."""
    return ReceiverServer((host, port), secret=secret, out=out, max_age_seconds=max_age_seconds, stop_after=stop_after)
