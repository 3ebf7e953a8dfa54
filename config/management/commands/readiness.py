"""``manage.py readiness [--role web|worker|beat]``: the readiness report as JSON, exit 0 or 1.

The compose health checks of the worker and beat containers call it (the web container asks
``GET /readyz``, which is the web role). See ``config/health.py`` for the checks.
"""
from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from config import health


class Command(BaseCommand):
    help = "Print the readiness checks of a role as JSON; exit 1 when one fails."
    requires_system_checks: list[str] = []  # a health probe stays cheap
    requires_migrations_checks = False

    def add_arguments(self, parser) -> None:
        parser.add_argument("--role", choices=sorted(health.ROLE_CHECKS), default="web")
        parser.add_argument(
            "--node", default=None,
            help="worker role: the Celery node to ping (default celery@<this host>)",
        )

    def handle(self, *args, role: str, node: str | None, **options) -> None:
        report = health.readiness(role, worker_node=node)
        self.stdout.write(json.dumps(report, sort_keys=True))
        if report["status"] != health.OK:
            failed = ", ".join(name for name, check in report["checks"].items() if check["status"] == health.FAIL)
            raise CommandError(f"not ready: {failed}", returncode=1)
