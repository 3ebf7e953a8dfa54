"""``manage.py verify_audit [--since DATE]``: check the hash chains of the decision log and the
audit records; exit 0 when they hold, 1 naming the first broken entry."""
from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from allocation.audit import chain


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as error:
        raise CommandError(f"--since: {text!r} is not a date (YYYY-MM-DD).") from error


class Command(BaseCommand):
    help = "Verify the audit hash chains (seals written from --since on); exit 1 naming the first broken entry."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--since", type=_date, default=None, help="Only seals written on or after this date (YYYY-MM-DD).")
        parser.add_argument("--no-seal", action="store_true", help="Do not seal pending audit records first.")

    def handle(self, *args, since: dt.date | None = None, no_seal: bool = False, **options) -> None:
        result = chain.verify(since=since, trigger="command", seal_first=not no_seal)
        if not result.ok:
            self.stderr.write(f"BROKEN: {result.problem} ({result.checked} seals checked before it)")
            raise SystemExit(1)
        self.stdout.write(f"OK: {result.checked} seals verified" + (f" since {since.isoformat()}" if since else ""))
