"""``manage.py check_integrity [--json]``: verify a (restored) database; exit 1 on a problem.

Read-only; the checks are described in ``allocation/integrity.py``.
"""
from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from allocation.integrity import check_integrity


class Command(BaseCommand):
    help = "Verify what Allot relies on (allocations within supply, runs, outbox, events, references, history)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--json", action="store_true", dest="as_json", help="print the report as JSON")

    def handle(self, *args, as_json: bool = False, **options) -> None:
        report = check_integrity()
        if as_json:
            self.stdout.write(json.dumps(report.as_dict(), indent=2, sort_keys=True, default=str))
        else:
            self.stdout.write(report.text())
        if not report.ok:
            problems = [check.name for check in report.checks if check.status == "problem"]
            raise CommandError(f"integrity problems: {', '.join(problems)}", returncode=1)
