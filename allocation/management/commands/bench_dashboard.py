"""``python manage.py bench_dashboard --lines 100000 [--json]``: measure the dashboard (issue 12).

Loads the demo book (``allocation.demo.load_demo_book``, as ``bench_allocation`` does) into an
empty migrated database (``--reuse`` keeps the data there), runs one full allocation, stores 30
days of snapshots (``kpis.backfill_demo_history``, then ``kpis.snapshot``), then measures:

- the floor: every KPI computed once from the book (``kpi.points`` per KPI, timed one by one,
  and ``kpis.snapshot`` as a whole: compute and store), which is what the figures themselves
  cost and what the hourly beat task pays, never a request;
- the dashboard's server time for a user holding every role: Django test ``Client`` GET
  ``/dashboard/`` (2 warm-ups, then ``--repeat`` timed requests; p50/p95 in ms) and its number of
  queries (``CaptureQueriesContext``).

With ``--json`` the last line printed is one JSON object with the figures.
"""
from __future__ import annotations

import json
import time

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.test.utils import CaptureQueriesContext

from allocation.dates import business_today
from allocation.demo import load_demo_book
from allocation.models import Order, RunStatus
from allocation.services import run_full

BATCH_SIZE = 5000
GOAL_MS = 300.0
WARMUPS = 2


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


class Command(BaseCommand):
    help = "Benchmark the dashboard (server time, queries) and the cost of computing every KPI."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--lines", type=int, default=100000, help="Open order lines to generate.")
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--repeat", type=int, default=20, help="Timed dashboard requests (after 2 warm-ups).")
        parser.add_argument("--reuse", action="store_true", help="Use the data (and runs) already loaded.")
        parser.add_argument("--json", dest="as_json", action="store_true",
                            help="Print the figures as one JSON object, last line.")

    def handle(self, *args, lines: int, seed: int, repeat: int, reuse: bool, as_json: bool, **options) -> None:
        if repeat < 1:
            raise CommandError("--repeat must be at least 1.")
        figures: dict = {"database": connection.vendor, "requested_lines": lines}
        self.stdout.write(f"Database: {connection.vendor} {connection.settings_dict.get('NAME')}")
        if Order.objects.exists() and not reuse:
            raise CommandError("Orders already exist: use an empty database, or --reuse to bench the data there.")
        if not reuse:
            started = time.perf_counter()
            count = load_demo_book(seed=seed, lines=lines, business_date=business_today(), batch_size=BATCH_SIZE)
            self.stdout.write(f"Loaded {count} events in {time.perf_counter() - started:.1f}s.")
            started = time.perf_counter()
            run = run_full(trigger="manual")
            if run.status != RunStatus.SUCCEEDED:
                raise CommandError(f"full run failed: {run.error}")
            self.stdout.write(f"full run: {run.line_count} lines in {time.perf_counter() - started:.1f}s")
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("ANALYZE")  # as autovacuum would after the run's bulk writes
        figures["lines"] = _open_lines()
        figures.update(self._floor())
        figures.update(self._dashboard(repeat))
        figures["goal_ms"] = GOAL_MS
        figures["within_goal"] = figures["dashboard_p95_ms"] <= GOAL_MS
        figures["notes"] = (
            "kpi_ms: kpi.points(ctx) once per KPI (the figures' own cost, paid by the hourly snapshot task); "
            "snapshot_s: kpis.snapshot() (every KPI computed and stored); dashboard_*: Django test Client GET "
            f"/dashboard/ as a user holding every role, {WARMUPS} warm-ups then {repeat} timed requests "
            "(server time incl. template rendering, no network); dashboard_queries: CaptureQueriesContext of one request"
        )
        if as_json:
            self.stdout.write(json.dumps(figures, default=str, separators=(",", ":")))

    def _floor(self) -> dict:
        from allocation import kpis

        started = time.perf_counter()
        history_rows = kpis.backfill_demo_history()
        backfill_s = time.perf_counter() - started
        self.stdout.write(f"demo history: {history_rows} synthetic rows + today's snapshot in {backfill_s:.2f}s")
        ctx = kpis.Context.current()
        per_kpi: dict[str, float] = {}
        for kpi in kpis.KPIS:
            started = time.perf_counter()
            kpi.points(ctx)
            per_kpi[kpi.code] = round((time.perf_counter() - started) * 1000, 1)
        for code, ms in sorted(per_kpi.items(), key=lambda item: -item[1]):
            self.stdout.write(f"  {code:<22} {ms:>9.1f} ms")
        started = time.perf_counter()
        rows = kpis.snapshot(ctx=ctx)
        snapshot_s = time.perf_counter() - started
        self.stdout.write(
            f"every KPI once: {sum(per_kpi.values()):.1f} ms; kpis.snapshot (compute + store {rows} rows) "
            f"{snapshot_s:.3f}s"
        )
        return {"kpi_ms": per_kpi, "kpi_total_ms": round(sum(per_kpi.values()), 1),
                "snapshot_s": round(snapshot_s, 3), "snapshot_rows": rows, "backfill_s": round(backfill_s, 3)}

    def _dashboard(self, repeat: int) -> dict:
        from django.contrib.auth.models import Group, User
        from django.test import Client
        from django.urls import reverse

        from config import roles

        user, _ = User.objects.get_or_create(username="bench_dashboard")
        user.groups.set([Group.objects.get_or_create(name=name)[0] for name in roles.ALL_ROLES])
        client = Client()
        client.force_login(user)
        url = reverse("allocation:dashboard")
        times: list[float] = []
        queries = None
        for index in range(WARMUPS + repeat):
            started = time.perf_counter()
            if index == 0:
                with CaptureQueriesContext(connection) as captured:
                    response = client.get(url)
                queries = len(captured)
            else:
                response = client.get(url)
            elapsed = time.perf_counter() - started
            if response.status_code != 200:
                raise CommandError(f"GET {url} answered {response.status_code}")
            if index >= WARMUPS:
                times.append(elapsed)
        p50 = round(_percentile(times, 0.5) * 1000, 1)
        p95 = round(_percentile(times, 0.95) * 1000, 1)
        size = len(response.content)
        self.stdout.write(
            f"dashboard (every role, {repeat} requests): p50 {p50:.1f} ms, p95 {p95:.1f} ms, {queries} queries, "
            f"{size / 1024:.0f} KiB (goal <= {GOAL_MS:.0f} ms)"
        )
        return {"dashboard_p50_ms": p50, "dashboard_p95_ms": p95, "dashboard_queries": queries,
                "dashboard_bytes": size, "dashboard_n": repeat}


def _open_lines() -> int:
    from allocation.kpis import open_lines

    return open_lines().count()
