"""``python manage.py bench_allocation --lines 100000``: measure allocation runs on demo data.

Loads the demo data set (``allocation.demo.generate_events``) through ingestion into the
configured database (meant for PostgreSQL, an empty migrated database; ``--reuse`` keeps data
already there), activates the demo policy, then measures:

- a cold full run (every decision new) and a warm one (nothing changed): load, engine,
  persist and total seconds, and engine lines per second;
- ``--incremental`` single-item runs on items of small item groups, each triggered by one
  ``inventory.adjusted`` event ingested and processed: p50/p95 from the event applied to its
  run's decisions committed (``run.finished_at - event.applied_at``), and of the run alone.
  The largest item group is reported too: an event on one of its items costs about a full run.
"""
from __future__ import annotations

import datetime as dt
import random
import statistics
import time

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.utils import timezone

from allocation.dates import business_today
from allocation.demo import load_demo_book
from allocation.models import AllocationRun, InventoryPosition, Order, OrderLine, RunStatus
from allocation.services import run_full

BATCH_SIZE = 5000


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


class Command(BaseCommand):
    help = "Benchmark full and incremental allocation runs on generated demo data."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--lines", type=int, default=100000, help="Open order lines to generate.")
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--incremental", type=int, default=20, help="Single-item incremental runs to time.")
        parser.add_argument("--reuse", action="store_true", help="Use the data already loaded.")

    def handle(self, *args, lines: int, seed: int, incremental: int, reuse: bool, **options) -> None:
        from integrations.services import ingest, process_pending

        self.stdout.write(f"Database: {connection.vendor} {connection.settings_dict.get('NAME')}")
        if Order.objects.exists() and not reuse:
            raise CommandError("Orders already exist: use an empty database, or --reuse to bench the data there.")
        if not reuse:
            started = time.perf_counter()
            count = load_demo_book(seed=seed, lines=lines, business_date=business_today(), batch_size=BATCH_SIZE)
            self.stdout.write(f"Loaded {count} events in {time.perf_counter() - started:.1f}s.")
        self._full("cold full run", trigger="manual")
        self._full("warm full run", trigger="manual")
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")  # as autovacuum would after the cold run's bulk writes
        if incremental:
            self._incremental(incremental, seed, ingest, process_pending)

    def _full(self, label: str, *, trigger: str) -> None:
        started = time.perf_counter()
        run = run_full(trigger=trigger)
        wall = time.perf_counter() - started
        if run.status != RunStatus.SUCCEEDED:
            raise CommandError(f"{label} failed: {run.error}")
        timings = run.timings
        rate = run.line_count / timings["engine"] if timings.get("engine") else 0.0
        self.stdout.write(
            f"{label}: {run.line_count} lines, {run.allocation_count} allocations, {run.changed_line_count} changed; "
            f"load {timings['load']:.3f}s, engine {timings['engine']:.3f}s ({rate:,.0f} lines/s), "
            f"persist {timings['persist']:.3f}s, total {timings['total']:.3f}s (wall {wall:.3f}s); "
            f"exceptions +{run.exceptions_raised} ~{run.exceptions_updated} -{run.exceptions_resolved}"
        )

    def _incremental(self, count: int, seed: int, ingest, process_pending) -> None:
        from allocation.loading import item_group_partition
        from allocation.policy_bridge import active_context
        from integrations.models import Event

        rng = random.Random(seed)
        groups = sorted(item_group_partition(active_context()), key=len, reverse=True)
        largest = groups[0] if groups else frozenset()
        self.stdout.write(
            f"item groups: {len(groups)}; largest {len(largest)} SKUs "
            f"({OrderLine.objects.filter(item__sku__in=largest, status='open').count()} open lines); "
            f"sizes of the next: {[len(g) for g in groups[1:6]]}"
        )
        # Single-item runs measure what an event costs when its group is small; an item of the
        # largest group costs about a full run (its group is most of the data).
        small = {sku for group in groups if len(group) <= 20 for sku in group}
        positions = [
            pair for pair in InventoryPosition.objects.filter(on_hand__gte=2, item__order_lines__status="open")
            .values_list("location__code", "item__sku").distinct().order_by("item__sku", "location__code")
            if pair[1] in small
        ]
        if not positions:
            raise CommandError("No inventory position of a small item group with open lines to adjust.")
        event_to_decision: list[float] = []
        run_only: list[float] = []
        wall: list[float] = []
        base = timezone.now()
        for index in range(count):
            location, sku = rng.choice(positions)
            at = (base + dt.timedelta(seconds=index + 1)).isoformat()
            event = {
                "id": f"bench-{base.timestamp():.0f}-{index}", "type": "inventory.adjusted", "source": "wms",
                "occurred_at": at,
                "data": {"location": location, "sku": sku, "delta": "-1" if index % 2 else "1", "reason": "bench",
                         "as_of": at},
            }
            last_run = AllocationRun.objects.order_by("-id").values_list("id", flat=True).first() or 0
            started = time.perf_counter()
            ingest([event], via="api")
            process_pending()
            wall.append(time.perf_counter() - started)
            applied_at = Event.objects.filter(event_id=event["id"]).values_list("applied_at", flat=True).first()
            run = AllocationRun.objects.filter(id__gt=last_run, trigger="event").order_by("id").first()
            if run is None or applied_at is None or run.status != RunStatus.SUCCEEDED:
                raise CommandError(f"event {event['id']} did not give a successful incremental run")
            event_to_decision.append((run.finished_at - applied_at).total_seconds())
            run_only.append(run.timings["total"])
        self.stdout.write(
            f"incremental single-item runs ({count}): event applied -> decisions committed "
            f"p50 {_percentile(event_to_decision, 0.5) * 1000:.1f} ms, p95 {_percentile(event_to_decision, 0.95) * 1000:.1f} ms; "
            f"run alone p50 {_percentile(run_only, 0.5) * 1000:.1f} ms, p95 {_percentile(run_only, 0.95) * 1000:.1f} ms; "
            f"ingest+process+run wall p50 {statistics.median(wall) * 1000:.1f} ms"
        )
