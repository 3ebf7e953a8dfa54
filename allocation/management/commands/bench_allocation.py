"""``python manage.py bench_allocation --lines 100000 [--json]``: measure allocation runs on demo data.

Loads the demo data set (``allocation.demo.generate_events``) through ingestion into the
configured database (meant for PostgreSQL, an empty migrated database; ``--reuse`` keeps data
already there), activates the demo policy, then measures:

- the floor (``--floor-rows``, 100k): read that many order-line rows into tuples plus COPY as
  many allocation-shaped rows into a TEMP table (PostgreSQL; SQLite: ``executemany``), in this
  process right before the runs, so run times can be read against what the database costs;
- a cold full run (every decision new) and a warm one (nothing changed): load, engine,
  persist and total seconds, and engine lines per second;
- ``--incremental`` single ``inventory.adjusted`` events on items of small item groups and
  ``--incremental-largest`` on items of the largest group, each ingested through
  ``integrations.services.ingest`` and processed with ``process_pending``: p50/p95 from the
  event stored (``received_at``) to the decisions of the first later run covering its SKU
  committed (``run.finished_at``); the older figure from the event applied (``applied_at``)
  and the run alone are printed too;
- ``--actions`` planner overrides (pin 1 unit from on-hand) through
  ``exceptions.services.override`` on open exceptions, timed as the caller sees the call.

With ``--json`` the last line printed is one JSON object with the figures (keys listed in
``JSON_KEYS``) and ``notes`` saying how they were measured.
"""
from __future__ import annotations

import datetime as dt
import json
import random
import statistics
import time
from decimal import Decimal

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.utils import timezone

from allocation.dates import business_today
from allocation.demo import load_demo_book
from allocation.models import (
    AllocationRun,
    InventoryPosition,
    Order,
    OrderLine,
    RunScope,
    RunStatus,
)
from allocation.services import run_full

BATCH_SIZE = 5000
SMALL_GROUP_SKUS = 20

JSON_KEYS = (
    "lines", "cold_s", "warm_s", "engine_lines_per_s", "largest_group_lines",
    "incr_p50_ms_small", "incr_p95_ms_small", "incr_p50_ms_largest", "incr_p95_ms_largest",
    "action_p95_ms", "floor_read_copy_s",
)


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


def _ms(values: list[float], share: float) -> float | None:
    return round(_percentile(values, share) * 1000, 1) if values else None


class Command(BaseCommand):
    help = "Benchmark full and incremental allocation runs on generated demo data."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--lines", type=int, default=100000, help="Open order lines to generate.")
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument(
            "--incremental", type=int, default=50, help="Single-event runs to time on items of small item groups."
        )
        parser.add_argument(
            "--incremental-largest", type=int, default=None,
            help="Single-event runs to time on items of the largest item group (default: as --incremental).",
        )
        parser.add_argument("--actions", type=int, default=20, help="Planner overrides to time through the service.")
        parser.add_argument("--floor-rows", type=int, default=100000, help="Rows read and copied for the floor.")
        parser.add_argument("--reuse", action="store_true", help="Use the data already loaded.")
        parser.add_argument("--json", dest="as_json", action="store_true", help="Print the figures as one JSON object, last line.")
        parser.add_argument(
            "--share-mode", choices=("rank", "pro_rata", "equal"), default="rank",
            help="Share mode of the whole book (the active policy's global rule), before the runs.",
        )

    def handle(
        self, *args, lines: int, seed: int, incremental: int, incremental_largest: int | None, actions: int,
        floor_rows: int, reuse: bool, as_json: bool, share_mode: str = "rank", **options,
    ) -> None:
        from integrations.services import ingest, process_pending

        self.figures: dict = {"database": connection.vendor, "requested_lines": lines}
        self.notes: list[str] = []
        self.stdout.write(f"Database: {connection.vendor} {connection.settings_dict.get('NAME')}")
        if Order.objects.exists() and not reuse:
            raise CommandError("Orders already exist: use an empty database, or --reuse to bench the data there.")
        if not reuse:
            started = time.perf_counter()
            count = load_demo_book(seed=seed, lines=lines, business_date=business_today(), batch_size=BATCH_SIZE)
            self.stdout.write(f"Loaded {count} events in {time.perf_counter() - started:.1f}s.")
        self._share_mode(share_mode)
        self._floor(floor_rows)
        cold = self._full("cold full run", trigger="manual")
        warm = self._full("warm full run", trigger="manual")
        self.figures.update(
            lines=cold.line_count,
            cold_s=round(cold.timings["total"], 3),
            warm_s=round(warm.timings["total"], 3),
            cold_wall_s=round(cold.wall_s, 3),
            warm_wall_s=round(warm.wall_s, 3),
            engine_lines_per_s=round(max(cold.rate, warm.rate)),
            cold_timings=cold.timings,
            warm_timings=warm.timings,
        )
        self.notes.append(
            "cold_s/warm_s: the run's own total (timings.total; wall including commit in *_wall_s); "
            "engine_lines_per_s: the better of the two runs"
        )
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")  # as autovacuum would after the cold run's bulk writes
        largest_count = incremental if incremental_largest is None else incremental_largest
        self._incremental(incremental, largest_count, seed, ingest, process_pending)
        self._actions(actions, seed)
        if as_json:
            self.stdout.write(self._json_line())

    def _share_mode(self, mode: str) -> None:
        """Activate a copy of the active policy whose global rule says ``share_mode`` = ``mode``."""
        from policies.selectors import active_version, export_document
        from policies.services import import_document

        self.figures["share_mode"] = mode
        document = export_document(active_version())
        rule = next(r for r in document["rules"] if not r["scope"])
        if rule["settings"].get("share_mode", "rank") == mode:
            return
        rule["settings"]["share_mode"] = mode
        document["name"] = f"{document['name']} ({mode})"
        document.pop("effective_from", None)
        import_document(document, actor=None, activate=True)
        self.stdout.write(f"Share mode of the book: {mode} (policy {document['name']!r} active).")

    # -- the floor ---------------------------------------------------------------------------

    def _floor(self, rows: int) -> None:
        table = OrderLine._meta.db_table
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id, order_id, item_id, quantity, shipped_quantity, unit_price, status, ship_from_id "  # noqa: S608
                f"FROM {table} ORDER BY id LIMIT %s",
                [rows],
            )
            read = [tuple(row) for row in cursor.fetchall()]
        read_s = time.perf_counter() - started
        if not read:
            raise CommandError("No order lines to read for the floor measurement.")
        now = timezone.now()
        today = business_today()
        # Allocation-shaped: line, item, location, supply, quantity, confirmed date, state, run, stamps.
        shaped = (
            (line[0], line[2], 1, None, line[3] or Decimal("1"), today, "reserved", 1, now, now)
            for line in (read[i % len(read)] for i in range(rows))
        )
        columns = "line_id, item_id, location_id, supply_id, quantity, confirmed_date, state, run_id, created_at, updated_at"
        copy_started = time.perf_counter()
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute(
                    "CREATE TEMP TABLE bench_floor_allocation (line_id bigint, item_id bigint, location_id bigint, "
                    "supply_id bigint, quantity numeric(14,3), confirmed_date date, state varchar(16), run_id bigint, "
                    "created_at timestamptz, updated_at timestamptz)"
                )
                with cursor.cursor.copy(f"COPY bench_floor_allocation ({columns}) FROM STDIN") as copy:
                    for row in shaped:
                        copy.write_row(row)
                how = "COPY into a TEMP table"
            else:
                cursor.execute(
                    "CREATE TEMP TABLE bench_floor_allocation (line_id integer, item_id integer, location_id integer, "
                    "supply_id integer, quantity decimal, confirmed_date date, state varchar(16), run_id integer, "
                    "created_at datetime, updated_at datetime)"
                )
                cursor.executemany(
                    f"INSERT INTO bench_floor_allocation ({columns}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    [(a, b, c, d, str(e), f, g, h, i, j) for a, b, c, d, e, f, g, h, i, j in shaped],
                )
                how = "SQLite has no COPY: executemany into a TEMP table"
            cursor.execute("SELECT count(*) FROM bench_floor_allocation")
            copied = cursor.fetchone()[0]
            cursor.execute("DROP TABLE bench_floor_allocation")
        copy_s = time.perf_counter() - copy_started
        self.figures.update(
            floor_read_copy_s=round(read_s + copy_s, 3), floor_read_s=round(read_s, 3), floor_copy_s=round(copy_s, 3),
            floor_rows_read=len(read), floor_rows_copied=copied,
        )
        self.notes.append(
            f"floor: read {len(read)} order-line rows into tuples + {how} of {copied} allocation-shaped rows"
            + ("" if len(read) >= rows else f" (fewer than {rows} lines exist; the copy cycles through them)")
        )
        self.stdout.write(
            f"floor: read {len(read)} line rows {read_s:.3f}s, copy {copied} allocation rows {copy_s:.3f}s "
            f"({'COPY' if connection.vendor == 'postgresql' else 'executemany'}), total {read_s + copy_s:.3f}s"
        )

    # -- full runs ---------------------------------------------------------------------------

    def _full(self, label: str, *, trigger: str):
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
        run.wall_s, run.rate = wall, rate
        return run

    # -- incremental runs from events --------------------------------------------------------

    def _incremental(self, small_count: int, largest_count: int, seed: int, ingest, process_pending) -> None:
        from allocation.loading import item_group_partition
        from allocation.policy_bridge import active_context

        rng = random.Random(seed)
        groups = sorted(item_group_partition(active_context()), key=len, reverse=True)
        largest = groups[0] if groups else frozenset()
        largest_lines = OrderLine.objects.filter(item__sku__in=largest, status="open").count()
        self.figures.update(
            largest_group_lines=largest_lines, largest_group_skus=len(largest), item_groups=len(groups)
        )
        self.stdout.write(
            f"item groups: {len(groups)}; largest {len(largest)} SKUs ({largest_lines} open lines); "
            f"sizes of the next: {[len(g) for g in groups[1:6]]}"
        )
        # Small groups: what an event costs when little depends on it; the largest group: an
        # event on an item most of the book is linked to.
        small = {sku for group in groups[1:] if len(group) <= SMALL_GROUP_SKUS for sku in group}
        pairs = list(
            InventoryPosition.objects.filter(on_hand__gte=2, item__order_lines__status="open")
            .values_list("location__code", "item__sku").distinct().order_by("item__sku", "location__code")
        )
        base = timezone.now()
        for label, skus, count in (("small", small, small_count), ("largest", largest, largest_count)):
            positions = [pair for pair in pairs if pair[1] in skus]
            if not count:
                continue
            if not positions:
                raise CommandError(f"No inventory position of a {label} item group with open lines to adjust.")
            self._events(label, positions, count, rng, base, ingest, process_pending)
        self.notes.append(
            "incr_*: one inventory.adjusted event at a time through integrations.services.ingest + process_pending "
            "(synchronous, no worker), event received_at -> finished_at of the first later successful run covering "
            f"its SKU; small = items of groups of <= {SMALL_GROUP_SKUS} SKUs other than the largest; "
            "incr_applied_* is the older applied_at -> finished_at figure"
        )

    def _events(self, label: str, positions, count: int, rng, base, ingest, process_pending) -> None:
        from integrations.models import Event

        stored: list[float] = []
        applied: list[float] = []
        run_only: list[float] = []
        wall: list[float] = []
        for index in range(count):
            location, sku = rng.choice(positions)
            at = (base + dt.timedelta(seconds=index + 1)).isoformat()
            event = {
                "id": f"bench-{base.timestamp():.0f}-{label}-{index}", "type": "inventory.adjusted", "source": "wms",
                "occurred_at": at,
                "data": {"location": location, "sku": sku, "delta": "-1" if index % 2 else "1", "reason": "bench",
                         "as_of": at},
            }
            last_run = AllocationRun.objects.order_by("-id").values_list("id", flat=True).first() or 0
            started = time.perf_counter()
            ingest([event], via="api")
            process_pending()
            wall.append(time.perf_counter() - started)
            times = Event.objects.filter(event_id=event["id"]).values_list("received_at", "applied_at").first()
            runs = AllocationRun.objects.filter(id__gt=last_run, is_simulation=False).order_by("id")
            run = next((r for r in runs if r.scope == RunScope.FULL or sku in (r.scope_items or [])), None)
            if run is None or times is None or times[1] is None or run.status != RunStatus.SUCCEEDED:
                raise CommandError(f"event {event['id']} did not give a successful run covering {sku}")
            stored.append((run.finished_at - times[0]).total_seconds())
            applied.append((run.finished_at - times[1]).total_seconds())
            run_only.append(run.timings["total"])
        self.figures.update({
            f"incr_p50_ms_{label}": _ms(stored, 0.5), f"incr_p95_ms_{label}": _ms(stored, 0.95),
            f"incr_applied_p50_ms_{label}": _ms(applied, 0.5), f"incr_applied_p95_ms_{label}": _ms(applied, 0.95),
            f"incr_run_p95_ms_{label}": _ms(run_only, 0.95), f"incr_n_{label}": count,
        })
        self.stdout.write(
            f"incremental single-event runs, {label} groups ({count}): event stored -> decisions committed "
            f"p50 {_ms(stored, 0.5):.1f} ms, p95 {_ms(stored, 0.95):.1f} ms; "
            f"event applied -> decisions committed p50 {_ms(applied, 0.5):.1f} ms, p95 {_ms(applied, 0.95):.1f} ms; "
            f"run alone p50 {_ms(run_only, 0.5):.1f} ms, p95 {_ms(run_only, 0.95):.1f} ms; "
            f"ingest+process+run wall p50 {statistics.median(wall) * 1000:.1f} ms"
        )

    # -- planner actions ---------------------------------------------------------------------

    def _actions(self, count: int, seed: int) -> None:
        from django.contrib.auth.models import Group, User

        from allocation import services as allocation_services
        from config import roles
        from exceptions import services
        from exceptions.errors import ActionError
        from exceptions.models import DecisionException, ExceptionStatus

        if not count:
            self.figures.update(action_p50_ms=None, action_p95_ms=None, action_n=0)
            return
        planner, _ = User.objects.get_or_create(username="bench_planner")
        planner.groups.add(Group.objects.get_or_create(name=roles.PLANNER)[0])
        stock = {}
        for item_id, code in (
            InventoryPosition.objects.filter(on_hand__gte=1).values_list("item_id", "location__code").order_by("item_id", "location__code")
        ):
            stock.setdefault(item_id, code)
        candidates = [
            row for row in DecisionException.objects.filter(status=ExceptionStatus.OPEN, line__status="open")
            .values_list("pk", "version", "line__item_id").order_by("pk")
            if row[2] in stock
        ]
        random.Random(seed).shuffle(candidates)
        background = allocation_services.runs_in_background()
        caller: list[float] = []
        run_only: list[float] = []
        skipped = 0
        for pk, version, item_id in candidates:
            if len(caller) >= count:
                break
            started = time.perf_counter()
            try:
                result = services.override(
                    pk, actor=planner, expected_version=version, location=stock[item_id], quantity="1",
                    reason_code="customer_commitment", note="bench_allocation",
                )
            except ActionError:
                skipped += 1
                continue
            elapsed = time.perf_counter() - started
            if result.approval is not None:  # above a threshold: no allocation changed, nothing to time
                skipped += 1
                continue
            caller.append(elapsed)
            run = result.run
            if run is not None and run.status == RunStatus.SUCCEEDED and run.timings.get("total") is not None:
                run_only.append(run.timings["total"])
        if not caller:
            raise CommandError("No open exception could be overridden (1 unit from on-hand) without an approver.")
        mode = (
            "queued (a worker or background thread runs it; the call returns after commit)" if background
            else "inline (no worker or background thread in this command: the call includes the incremental run)"
        )
        self.figures.update(
            action_p50_ms=_ms(caller, 0.5), action_p95_ms=_ms(caller, 0.95), action_n=len(caller),
            action_run_p95_ms=_ms(run_only, 0.95), action_skipped=skipped, action_run_mode="queued" if background else "inline",
        )
        self.notes.append(
            f"action_*: exceptions.services.override (pin 1 unit from on-hand) on {len(caller)} random open exceptions, "
            f"wall time of the call as the caller sees it (committed and answered); its run {mode}; "
            f"action_run_p95_ms is that run's own total; {skipped} candidates skipped (refused or needing an approver)"
        )
        run_text = f"{_ms(run_only, 0.95):.1f} ms" if run_only else "n/a"
        self.stdout.write(
            f"planner overrides through the service ({len(caller)}, run {'queued' if background else 'inline'}): "
            f"p50 {_ms(caller, 0.5):.1f} ms, p95 {_ms(caller, 0.95):.1f} ms; run alone p95 {run_text}; "
            f"{skipped} skipped"
        )

    def _json_line(self) -> str:
        figures = {key: self.figures.get(key) for key in JSON_KEYS}
        figures.update({key: value for key, value in self.figures.items() if key not in figures})
        figures["notes"] = "; ".join(self.notes)
        return json.dumps(figures, default=str, separators=(",", ":"))
