"""``python manage.py outbox_receiver --port N --secret S``: a sample receiver of outbound messages
that verifies each signature and prints what it gets, one JSON line per delivery."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from integrations.receiver import make_server


class Command(BaseCommand):
    help = "Receive Allot's outbound messages: verify X-Allot-Signature and print each one as a JSON line."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--port", type=int, required=True, help="port to listen on (0: any free one)")
        parser.add_argument("--secret", required=True, help="the shared secret (ALLOT_OUTBOX_SECRET on the sending side)")
        parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
        parser.add_argument("--max-age", type=int, default=300, help="refuse timestamps more than this many seconds off")
        parser.add_argument("--count", type=int, default=None, help="stop after this many distinct messages")

    def handle(self, *args, port: int, secret: str, host: str, max_age: int, count: int | None, **options) -> None:
        if not secret:
            raise CommandError("--secret must not be empty")
        if not 0 <= port <= 65535:
            raise CommandError("--port must be 0-65535")
        server = make_server(host=host, port=port, secret=secret, out=self.stdout, max_age_seconds=max_age, stop_after=count)
        self.stderr.write(f"listening on {server.url} (POST; signed with the shared secret)")
        try:
            server.serve_forever(poll_interval=0.1)
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
