"""Measure a CSV upload through the browser's path: ``--rows`` order lines (5 per order) of
``order.upserted`` stored as an ``EventUpload`` and processed by ``integrations.uploads`` (parse,
validate and store through ``ingest``), then applied by ``process_pending``.

Master data (locations, items, customers) is ingested first and not timed. Codes carry a run tag
so repeated runs on one database do not collide. ``--bad N`` makes every N-th row invalid (a
negative quantity): its order is rejected whole and each of its rows named. Allocation runs are
not requested. Prints seconds to store (upload created -> every row processed) and to apply.
"""
from __future__ import annotations

import csv
import io
import json
import secrets
import time

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from integrations import uploads
from integrations.feeds_models import UploadRejection
from integrations.services import deferred_processing, ingest, process_pending, register_source

LINES_PER_ORDER = 5


class Command(BaseCommand):
    help = "Time a CSV upload of order lines (store and apply) through integrations.uploads."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--rows", type=int, default=50_000)
        parser.add_argument("--bad", type=int, default=0, help="every N-th row invalid (0: none)")

    def handle(self, *args, rows: int, bad: int, **options) -> None:
        if rows < LINES_PER_ORDER:
            raise CommandError(f"--rows must be at least {LINES_PER_ORDER}")
        tag = "UP" + secrets.token_hex(3).upper()
        source = register_source(code=f"bench-{tag.lower()}")
        user, _ = get_user_model().objects.get_or_create(username="bench_upload")
        skus = [f"{tag}-SKU{i}" for i in range(500)]
        customers = [f"{tag}-C{i}" for i in range(200)]
        master = [{"id": f"{tag}-L", "type": "location.upserted", "source": source.code, "occurred_at": "2026-05-31T06:00:00Z",
                   "data": {"code": f"{tag}-DC", "name": "DC", "region": "east", "kind": "warehouse"}}]
        master += [{"id": f"{tag}-I{i}", "type": "item.upserted", "source": source.code, "occurred_at": "2026-05-31T06:00:00Z",
                    "data": {"sku": sku, "description": "x", "item_class": "valves", "uom": "EA", "unit_cost": "10"}} for i, sku in enumerate(skus)]
        master += [{"id": f"{tag}-C{i}", "type": "customer.upserted", "source": source.code, "occurred_at": "2026-05-31T06:00:00Z",
                    "data": {"code": code, "name": code, "tier": 1 + i % 4, "segment": "industrial", "region": "east"}} for i, code in enumerate(customers)]
        with deferred_processing(skip_runs=True):
            ingest(master, actor=None, via="api")
            process_pending()

            out = io.StringIO()
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(["number", "customer", "channel", "created_at", "requested_date", "line", "sku", "quantity", "unit_price", "unit_cost"])
            for row in range(rows):
                order, line = divmod(row, LINES_PER_ORDER)
                quantity = "-1" if bad and (row + 1) % bad == 0 else str(1 + row % 9)
                writer.writerow([f"{tag}-SO{order}", customers[order % len(customers)], "b2b_contract", "2026-05-30T10:00:00Z",
                                 "2026-06-05", line + 1, skus[(order + line) % len(skus)], quantity, "100", "60"])
            content = out.getvalue().encode()

            started = time.perf_counter()
            upload = uploads.create_upload(actor=user, source=source, filename="bench.csv", content=content, event_type="order.upserted")
            # In a worker the task runs after commit; here (no broker) on_commit has run it already.
            upload.refresh_from_db()
            if upload.status != "done":
                upload = uploads.process_upload(upload.pk)
            stored = time.perf_counter() - started
            mark = time.perf_counter()
            summary = process_pending()
            applied = time.perf_counter() - mark
        result = {
            "database": connection.vendor,
            "rows": rows,
            "bytes": len(content),
            "events": upload.events,
            "accepted": upload.accepted,
            "rejected_rows": upload.rejected_rows,
            "rejections_recorded": UploadRejection.objects.filter(upload=upload).count(),
            "store_seconds": round(stored, 2),
            "apply_seconds": round(applied, 2),
            "applied_events": summary.applied,
            "rows_per_second_stored": round(rows / stored),
            "rows_per_second_end_to_end": round(rows / (stored + applied)),
        }
        self.stdout.write(json.dumps(result))
