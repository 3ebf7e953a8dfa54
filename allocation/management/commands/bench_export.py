"""``python manage.py bench_export --rows 1000000 [--format csv|xlsx] [--setup-only] [--json]``:
time an export of the largest list there is, the decision log, and show its memory is flat.

Meant for a scratch PostgreSQL database (``migrate`` first). The first call writes the data
(once; later calls reuse it): one run that logged ``--rows`` decisions, one per order line,
over orders of 1,000 lines each, with ``bulk_create`` in batches. Then the run page's export
(``GET /runs/<id>/?export=csv``, the decisions section: four joins per row, JSON
allocations) is fetched through the whole Django stack with the test client as a planner and
read to its end, a chunk at a time, the way a WSGI server sends it. Measured: seconds to the
first chunk and to the last, rows and bytes, and the process's resident memory before the
request, after the first chunk, half way and at the end (``ru_maxrss`` is the peak of the
whole process, data setup included: run ``--setup-only`` first, then time the export alone
under ``/usr/bin/time -v``).
"""
from __future__ import annotations

import datetime as dt
import json
import resource
import time
from decimal import Decimal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction
from django.test import Client

BATCH_SIZE = 10_000
LINES_PER_ORDER = 1000
MARK = "bench_export"


def _rss_mb() -> float:
    """The current resident set of this process (Linux /proc), in MB."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return round(pages * resource.getpagesize() / 2**20, 1)


def _peak_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


class Command(BaseCommand):
    help = "Time a 1M-row export (CSV or XLSX) of the decision log and report memory along the way."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--rows", type=int, default=1_000_000)
        parser.add_argument("--format", choices=("csv", "xlsx"), default="csv")
        parser.add_argument("--setup-only", action="store_true", help="Write the data and stop.")
        parser.add_argument("--json", action="store_true", help="Print one JSON object as the last line.")

    def handle(self, *args, **options) -> None:
        if settings.PRODUCTION:
            raise CommandError("bench_export writes bench data: not in production.")
        rows = options["rows"]
        if rows < 1:
            raise CommandError("--rows must be at least 1.")
        started = time.perf_counter()
        run = self._data(rows)
        setup_seconds = round(time.perf_counter() - started, 1)
        if options["setup_only"]:
            self.stdout.write(f"bench data ready: run {run.pk} with {rows} decisions ({setup_seconds} s)")
            return
        result = self._export(run, options["format"])
        result.update({"rows_asked": rows, "setup_seconds": setup_seconds, "database": connection.vendor})
        for key, value in result.items():
            self.stdout.write(f"{key}: {value}")
        if options["json"]:
            self.stdout.write(json.dumps(result))

    # ------------------------------------------------------------------ data

    def _data(self, rows: int):
        from allocation.models import AllocationRun

        run = AllocationRun.objects.filter(worker=MARK, line_count=rows).first()
        if run is not None:
            return run
        return self._write(rows)

    @transaction.atomic
    def _write(self, rows: int):
        from allocation.models import (
            AllocationRun,
            Customer,
            Item,
            LineDecisionLog,
            Order,
            OrderLine,
        )

        tag = f"B{rows}"
        customer, _ = Customer.objects.get_or_create(
            code=f"{tag}-CUST", defaults={"name": "Bench customer", "tier": 2, "segment": "bench", "region": "east"}
        )
        item, _ = Item.objects.get_or_create(sku=f"{tag}-ITEM", defaults={"item_class": "bench"})
        run = AllocationRun.objects.create(
            trigger="manual", scope="full", as_of=dt.date(2026, 6, 1), status="completed", worker=MARK,
            line_count=rows, changed_line_count=rows,
        )
        created = dt.datetime(2026, 6, 1, 10, tzinfo=dt.UTC)
        orders = [
            Order(number=f"{tag}-{index:07d}", customer=customer, channel="bench", created_at=created,
                  requested_date=dt.date(2026, 6, 1) + dt.timedelta(days=index % 30))
            for index in range((rows + LINES_PER_ORDER - 1) // LINES_PER_ORDER)
        ]
        Order.objects.bulk_create(orders, batch_size=BATCH_SIZE)
        order_ids = list(Order.objects.filter(number__startswith=f"{tag}-").order_by("number").values_list("pk", flat=True))
        written = 0
        while written < rows:
            count = min(BATCH_SIZE, rows - written)
            lines = [
                OrderLine(order_id=order_ids[(written + i) // LINES_PER_ORDER], line=(written + i) % LINES_PER_ORDER + 1,
                          item=item, quantity=Decimal(5 + i % 7), unit_price=Decimal("12.50"), unit_cost=Decimal("8"))
                for i in range(count)
            ]
            OrderLine.objects.bulk_create(lines, batch_size=BATCH_SIZE)  # sets each pk (RETURNING)
            fresh = [line.pk for line in lines]
            LineDecisionLog.objects.bulk_create(
                [
                    LineDecisionLog(
                        line_id=pk, run=run, rank=written + i + 1, rank_key=["gain", 1, 0.5], score=0.5 + (i % 100) / 1000,
                        factors=[{"factor": "tier", "points": 3}], strategy="fill", priority_class=1 + i % 3,
                        allocations=[{"location": "DC-EAST-1", "quantity": str(5 + i % 7), "confirmed_date": "2026-06-02"}],
                        shortfall=Decimal(i % 3), fingerprint=f"{written + i:064d}", created_at=created,
                    )
                    for i, pk in enumerate(fresh)
                ],
                batch_size=BATCH_SIZE,
            )
            written += count
            if written % 100_000 == 0:
                self.stdout.write(f"  {written} decisions written")
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE allocation_orderline; ANALYZE allocation_linedecisionlog; ANALYZE allocation_order")
        return run

    # ------------------------------------------------------------------ export

    def _export(self, run, fmt: str) -> dict:
        from django.contrib.auth.models import User

        user, _ = User.objects.get_or_create(username="bench_export", defaults={"is_superuser": True})
        client = Client()
        client.force_login(user)
        rss_before = _rss_mb()
        started = time.perf_counter()
        response = client.get(f"/runs/{run.pk}/", {"export": fmt})
        if response.status_code != 200:
            raise CommandError(f"export answered {response.status_code}")
        first_chunk = None
        size = 0
        lines = 0
        samples = []
        total_rows = run.line_count
        next_sample = 0.0
        for chunk in response.streaming_content:
            if first_chunk is None:
                first_chunk = time.perf_counter() - started
                samples.append(("first chunk", _rss_mb()))
            size += len(chunk)
            if fmt == "csv":
                lines += chunk.count(b"\n")
                if lines >= next_sample * total_rows:
                    samples.append((f"{round(100 * lines / total_rows)}%", _rss_mb()))
                    next_sample += 0.25
        response.close()
        elapsed = time.perf_counter() - started
        from integrations.models import ExportRecord

        record = ExportRecord.objects.order_by("-id").first()
        return {
            "format": fmt,
            "rows_exported": record.row_count,
            "record_status": record.status,
            "bytes": size,
            "seconds_to_first_byte": round(first_chunk or 0, 2),
            "seconds_total": round(elapsed, 1),
            "rows_per_second": round(record.row_count / elapsed) if elapsed else None,
            "rss_mb_before": rss_before,
            "rss_mb_samples": samples,
            "rss_mb_after": _rss_mb(),
            "peak_rss_mb_process": _peak_mb(),
        }
