"""``manage.py demo``: load the demo distributor through the same ingestion path as real feeds.

With ``--out FILE.jsonl`` it only writes the events. Otherwise it ingests them in batches,
processes them, then (where those parts are installed) imports the demo policy with a draft
variant to simulate, and runs a full allocation.
"""
from __future__ import annotations

import importlib
import importlib.util
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from itertools import islice
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from allocation.dates import business_today
from allocation.demo import demo_policy_documents, generate_events, register_demo_sources
from allocation.models import Customer, InventoryPosition, Item, Order, OrderLine, Supply

BATCH_SIZE = 5000


def _batches(events: Iterable[dict], size: int) -> Iterator[list[dict]]:
    iterator = iter(events)
    while batch := list(islice(iterator, size)):
        yield batch


def _optional(module: str, name: str) -> Callable[..., Any] | None:
    """The function ``module.name`` when that part of the product is installed, else None."""
    if importlib.util.find_spec(module) is None:
        return None
    return getattr(importlib.import_module(module), name, None)


class Command(BaseCommand):
    help = "Generate the demo data set; ingest it (default) or write it as JSON Lines (--out)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--seed", type=int, default=7, help="Random seed (same seed, same data).")
        parser.add_argument("--lines", type=int, default=20000, help="Open order lines to generate.")
        parser.add_argument("--out", help="Write the events to this JSON Lines file and stop.")
        parser.add_argument("--if-empty", action="store_true", help="Do nothing when orders already exist.")

    def handle(self, *args, seed: int, lines: int, out: str | None, if_empty: bool, **options) -> None:
        if lines < 1:
            raise CommandError("--lines must be at least 1")
        business_date = business_today()
        events = generate_events(seed=seed, lines=lines, business_date=business_date)
        if out:
            started = time.monotonic()
            with open(out, "w", encoding="utf-8") as handle:
                count = 0
                for event in events:
                    handle.write(json.dumps(event, separators=(",", ":")) + "\n")
                    count += 1
            self.stdout.write(f"Wrote {count} events to {out} in {time.monotonic() - started:.1f}s.")
            return
        if if_empty and Order.objects.exists():
            self.stdout.write("Orders already exist: demo data not loaded (--if-empty).")
            return
        ingest = _optional("integrations.services", "ingest")
        process_pending = _optional("integrations.services", "process_pending")
        if ingest is None or process_pending is None:
            raise CommandError("Ingestion (integrations.services) is not installed; use --out FILE.jsonl.")

        self.stdout.write(f"Demo data: seed {seed}, {lines} order lines, business date {business_date}.")
        register_demo_sources()
        run_full = _optional("allocation.services", "run_full")
        # Store every batch first and apply once (events apply oldest first); skip the incremental
        # runs ingestion would ask for when a full run follows anyway.
        deferred = _optional("integrations.services", "deferred_processing")
        deferral = deferred(skip_runs=run_full is not None) if deferred else nullcontext()
        started = time.monotonic()
        total = 0
        received: Counter[str] = Counter()
        with deferral:
            for batch in _batches(events, BATCH_SIZE):
                result = ingest(batch, actor=None, via="file")
                received.update(row["status"] for row in result.results)
                total += len(batch)
                self.stdout.write(f"  stored {total} events ({time.monotonic() - started:.1f}s)")
            summary = process_pending()
        outcome = ", ".join(f"{status} {count}" for status, count in sorted(received.items()))
        applied = ", ".join(f"{name} {getattr(summary, name)}" for name in ("applied", "stale", "parked", "failed")
                            if hasattr(summary, name))
        self.stdout.write(
            f"Ingested {total} events in {time.monotonic() - started:.1f}s ({outcome}; {applied}): "
            f"{Item.objects.count()} items, {Customer.objects.count()} customers, {Order.objects.count()} orders, "
            f"{OrderLine.objects.count()} lines, {InventoryPosition.objects.count()} positions, "
            f"{Supply.objects.count()} supply."
        )
        self._import_policy()
        self._decision_support(train=True)
        self._run_allocation()
        self._decision_support(train=False)
        self._kpi_history()

    def _import_policy(self) -> None:
        import_document = _optional("policies.services", "import_document")
        if import_document is None:
            self.stdout.write("Policies not installed: no demo policy imported.")
            return
        protected = Item.objects.filter(item_class="valves").order_by("sku").values_list("sku", flat=True).first()
        if protected is None:
            self.stdout.write("No valves in the data: no demo policy imported.")
            return
        active, draft = demo_policy_documents(protected_sku=protected)
        started = time.monotonic()
        import_document(active, actor=None, activate=True)
        import_document(draft, actor=None)
        self.stdout.write(
            f"Imported the demo policy (active, {len(active['rules'])} rules) and a draft variant "
            f"({len(draft['rules'])} rules) to simulate in {time.monotonic() - started:.1f}s."
        )

    def _run_allocation(self) -> None:
        run_full = _optional("allocation.services", "run_full")
        if run_full is None:
            self.stdout.write("Allocation runs not installed: no run started.")
            return
        started = time.monotonic()
        run = run_full(trigger="demo", actor=None)
        self.stdout.write(f"Full allocation run finished in {time.monotonic() - started:.1f}s: {run}.")

    def _decision_support(self, *, train: bool) -> None:
        """Before the run: train the reliability model on the receipt history (the run counts inbound
        with it); after: raise stockout-risk and transfer cases from what the run left short (insights)."""
        from allocation.dates import business_today
        from allocation.insights import expedite, reliability, stockout, transfers

        started = time.monotonic()
        if train:
            version = reliability.train(as_of=business_today(), actor="demo")
            self.stdout.write(f"Trained {version} on {version.training_rows} receipts: {version.reason} ({version.fit_seconds} s).")
            return
        risk, moves = stockout.check(business_today()), transfers.refresh(business_today())
        chase = expedite.refresh(business_today())
        self.stdout.write(
            f"Decision support: {risk['at_risk']} items at risk of stockout, {moves['recommended']} transfers and "
            f"{chase['recommended']} expedites recommended "
            f"({time.monotonic() - started:.1f}s)."
        )

    def _kpi_history(self) -> None:
        """Today's KPI figures, measured, and 30 days of demo history before them (labelled synthetic)."""
        from allocation import kpis

        started = time.monotonic()
        rows = kpis.backfill_demo_history()
        self.stdout.write(
            f"KPI snapshots: today measured, {rows} demo-history values for the 30 days before "
            f"(marked synthetic) in {time.monotonic() - started:.1f}s."
        )
