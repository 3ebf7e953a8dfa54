"""Measure ingestion: accepted events/s (``ingest``) and applied events/s (``process_pending``).

Generates a realistic stream (locations, items with substitutes, customers, lanes, inventory
snapshots and adjustments, supply and receipts, orders with 1-3 lines, cancellations, credit
holds, shipments) or reads ``--file``. Codes carry a run tag so repeated runs on one database
do not collide. Allocation runs are not requested unless ``--with-runs``.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import random
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from integrations.choices import BatchVia
from integrations.services import deferred_processing, ingest, process_pending

BATCH_SIZE = 5000
REGIONS = ("north", "south", "east", "west")
T0 = dt.datetime(2026, 5, 31, 6, 0, tzinfo=dt.UTC)


def _stamp(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def generate(total: int, *, seed: int, tag: str) -> Iterator[dict]:
    """Exactly ``total`` canonical events, master data first, then stock, supply and orders."""
    rng = random.Random(seed)
    counter = 0

    def event(type_: str, source: str, minutes: float, data: dict) -> dict:
        nonlocal counter
        counter += 1
        return {"id": f"{tag}-{counter}", "type": type_, "source": source, "occurred_at": _stamp(T0 + dt.timedelta(minutes=minutes)), "data": data}

    locations = [f"{tag}-DC{i}" for i in range(10)]
    items = [f"{tag}-SKU{i}" for i in range(max(20, total // 100))]
    customers = [f"{tag}-C{i}" for i in range(max(20, total // 100))]
    stock_keys = [(loc, sku) for sku in items for loc in rng.sample(locations, 3)]
    supplies = [f"{tag}-PO{i}" for i in range(max(10, total // 50))]
    fixed: list[dict] = []
    for index, code in enumerate(locations):
        fixed.append(event("location.upserted", "erp", 0, {"code": code, "name": f"DC {index}", "region": REGIONS[index % 4], "kind": "warehouse", "release_capacity_per_day": 5000, "cutoff_time": "15:00", "timezone": "UTC"}))
    for code in locations:
        for region in REGIONS:
            fixed.append(event("lane.upserted", "erp", 0, {"location": code, "region": region, "transit_days": rng.randint(1, 4), "cost_per_unit": f"{rng.uniform(0.2, 2):.2f}"}))
    for index, sku in enumerate(items):
        data = {"sku": sku, "description": f"Item {index}", "item_class": rng.choice(("valves", "pumps", "pipes", "fittings")), "uom": "EA", "unit_cost": f"{rng.uniform(1, 300):.2f}"}
        if index and rng.random() < 0.1:
            data["substitutes"] = [{"sku": items[rng.randrange(index)], "priority": 1}]
        fixed.append(event("item.upserted", "erp", 1, data))
    for index, code in enumerate(customers):
        fixed.append(event("customer.upserted", "erp", 1, {"code": code, "name": f"Customer {index}", "tier": rng.randint(1, 4), "segment": rng.choice(("healthcare", "manufacturing", "municipal", "retail")), "region": rng.choice(REGIONS), "home_location": rng.choice(locations), "sla_days": rng.randint(1, 5), "late_penalty_per_day": f"{rng.randint(0, 500)}"}))
    for loc, sku in stock_keys:
        fixed.append(event("inventory.snapshot", "wms", 2, {"location": loc, "sku": sku, "on_hand": str(rng.randint(100, 1000)), "quality_hold": str(rng.randint(0, 10)), "as_of": _stamp(T0 + dt.timedelta(minutes=1))}))
    for ref in supplies:
        fixed.append(event("supply.upserted", "erp", 3, {"ref": ref, "kind": rng.choice(("purchase_order", "asn", "transfer")), "sku": rng.choice(items), "location": rng.choice(locations), "quantity": str(rng.randint(50, 500)), "eta": (T0.date() + dt.timedelta(days=rng.randint(1, 30))).isoformat(), "supplier": f"SUP{rng.randint(1, 40)}", "confidence": f"{rng.uniform(0.5, 1):.2f}"}))
    fixed = fixed[:total]
    yield from fixed
    remaining = total - len(fixed)
    orders: list[tuple[str, list[dict]]] = []
    minute = 10.0
    while remaining > 0:
        minute += 0.01
        roll = rng.random()
        if roll < 0.80 or not orders:
            number = f"{tag}-SO{len(orders)}"
            lines = [
                {"line": n, "sku": rng.choice(items), "quantity": str(rng.randint(1, 20)), "unit_price": f"{rng.uniform(10, 500):.2f}", "unit_cost": f"{rng.uniform(5, 300):.2f}", "allow_substitute": rng.random() < 0.3}
                for n in range(1, rng.randint(1, 3) + 1)
            ]
            orders.append((number, lines))
            yield event("order.upserted", "erp", minute, {"number": number, "customer": rng.choice(customers), "channel": rng.choice(("b2b_contract", "field_sales", "ecommerce", "edi")), "created_at": _stamp(T0 + dt.timedelta(minutes=minute)), "requested_date": (T0.date() + dt.timedelta(days=rng.randint(0, 14))).isoformat(), "ship_complete": rng.random() < 0.1, "lines": lines})
        elif roll < 0.86:
            loc, sku = rng.choice(stock_keys)
            yield event("inventory.adjusted", "wms", minute, {"location": loc, "sku": sku, "delta": str(rng.randint(-20, 20)), "reason": "cycle count", "as_of": _stamp(T0 + dt.timedelta(minutes=minute))})
        elif roll < 0.90:
            yield event("supply.received", "wms", minute, {"ref": rng.choice(supplies), "quantity": str(rng.randint(1, 30)), "received_at": _stamp(T0 + dt.timedelta(minutes=minute))})
        elif roll < 0.93:
            yield event("order.cancelled", "erp", minute, {"number": rng.choice(orders)[0], "reason": "customer request"})
        elif roll < 0.95:
            yield event("credit.hold_changed", "erp", minute, {"customer": rng.choice(customers), "on_hold": rng.random() < 0.5, "reason": "credit review"})
        else:
            number, lines = rng.choice(orders)
            chosen = rng.choice(lines)
            loc = rng.choice([loc_code for loc_code, s in stock_keys if s == chosen["sku"]])
            yield event("shipment.confirmed", "tms", minute, {"order": number, "line": chosen["line"], "location": loc, "quantity": "1", "shipped_at": _stamp(T0 + dt.timedelta(minutes=minute))})
        remaining -= 1


def _backend_cpu() -> float | None:
    """CPU seconds used so far by this connection's PostgreSQL backend (local server only)."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_note(cpu: float, backend_before: float | None, count: int) -> str:
    backend_after = _backend_cpu()
    if backend_before is None or backend_after is None:
        return f"this process used {cpu:.2f}s CPU"
    backend = backend_after - backend_before
    return f"CPU: this process {cpu:.2f}s + database backend {backend:.2f}s = {count / (cpu + backend):,.0f} events per CPU-second"


def _read(file: Path, limit: int) -> list[dict]:
    events = []
    with file.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                events.append(json.loads(line))
            if len(events) >= limit:
                break
    return events


class Command(BaseCommand):
    help = "Benchmark ingestion: accepted events/s (ingest) and applied events/s (process_pending)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--events", type=int, default=100_000)
        parser.add_argument("--file", type=Path, default=None, help="read events from a JSON Lines file instead")
        parser.add_argument("--seed", type=int, default=11)
        parser.add_argument("--with-runs", action="store_true", help="also request allocation runs after each applied chunk")

    def handle(self, *args, events: int, file: Path | None, seed: int, with_runs: bool, **options) -> None:
        if events < 1:
            raise CommandError("--events must be at least 1")
        if file is not None:
            stream = _read(file, events)
        else:
            stream = list(generate(events, seed=seed, tag="B" + secrets.token_hex(3).upper()))
        self.stdout.write(f"{len(stream)} events on {connection.vendor} ({connection.settings_dict['NAME']})")
        accepted = duplicates = rejected = 0
        with deferred_processing(skip_runs=not with_runs):
            connection.ensure_connection()
            backend = _backend_cpu()
            started, cpu = time.perf_counter(), time.process_time()
            for start in range(0, len(stream), BATCH_SIZE):
                result = ingest(stream[start : start + BATCH_SIZE], via=BatchVia.FILE)
                accepted += result.accepted
                duplicates += result.duplicates
                rejected += result.rejected
            ingest_seconds, ingest_cpu = time.perf_counter() - started, time.process_time() - cpu
            ingest_note = _cpu_note(ingest_cpu, backend, accepted)
            backend = _backend_cpu()
            started, cpu = time.perf_counter(), time.process_time()
            summary = process_pending()
            apply_seconds, apply_cpu = time.perf_counter() - started, time.process_time() - cpu
            apply_note = _cpu_note(apply_cpu, backend, summary.processed)
        self.stdout.write(
            f"ingest: {accepted} accepted, {duplicates} duplicates, {rejected} rejected in {ingest_seconds:.2f}s "
            f"= {accepted / ingest_seconds:,.0f} accepted events/s ({ingest_note})"
        )
        self.stdout.write(
            f"apply: {summary.applied} applied, {summary.stale} stale, {summary.parked} parked, {summary.failed} failed "
            f"in {apply_seconds:.2f}s = {summary.processed / apply_seconds:,.0f} processed events/s, "
            f"{summary.applied / apply_seconds:,.0f} applied events/s ({apply_note})"
        )
