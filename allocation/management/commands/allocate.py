"""``python manage.py allocate [--as-of DATE] [--items SKU,...]``: run an allocation now and summarise it."""
from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError, CommandParser

from allocation.models import RunStatus, RunTrigger
from allocation.services import run_full, run_incremental


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as error:
        raise CommandError(f"--as-of must be an ISO date (YYYY-MM-DD), got {text!r}") from error


class Command(BaseCommand):
    help = "Run a full allocation, or an incremental one for the item groups of --items, synchronously."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--as-of", dest="as_of", help="Business date of the run (default: today).")
        parser.add_argument("--items", help="Comma-separated SKUs: re-run only their item groups.")

    def handle(self, *args, **options) -> None:
        as_of = _date(options["as_of"]) if options["as_of"] else None
        if options["items"] is not None:
            skus = [sku.strip() for sku in options["items"].split(",") if sku.strip()]
            if not skus:
                raise CommandError("--items must name at least one SKU")
            run = run_incremental(skus, trigger=RunTrigger.MANUAL, as_of=as_of)
        else:
            run = run_full(trigger=RunTrigger.MANUAL, as_of=as_of)
        if run.status != RunStatus.SUCCEEDED:
            raise CommandError(f"Run #{run.pk} failed: {run.error}")
        timings = ", ".join(f"{phase} {seconds:.3f}s" for phase, seconds in run.timings.items())
        self.stdout.write(
            f"Run #{run.pk} ({run.scope}, as of {run.as_of}) succeeded: {run.line_count} lines, "
            f"{run.allocation_count} allocations, {run.changed_line_count} changed lines; exceptions "
            f"{run.exceptions_raised} raised, {run.exceptions_updated} updated, {run.exceptions_resolved} resolved; "
            f"{timings}."
        )
