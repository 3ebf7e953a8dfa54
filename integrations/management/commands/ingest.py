"""Ingest a JSON Lines file of canonical events through the same path as the API."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from django.db.models import Count

from django.core.management.base import BaseCommand, CommandError

from integrations.choices import BatchVia
from integrations.errors import BatchRejected
from integrations.models import Event
from integrations.services import deferred_processing, ingest, process_pending

BATCH_SIZE = 5000


class Command(BaseCommand):
    help = "Ingest FILE.jsonl (one canonical event a line) in batches of 5,000, then apply them."

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--source-default", default=None, help="source for events that name none")

    def handle(self, *args, file: Path, source_default: str | None, **options) -> None:
        if not file.exists():
            raise CommandError(f"{file} does not exist")
        stored = duplicates = rejected = 0
        batch: list = []
        batch_ids: list[int] = []

        def flush() -> None:
            nonlocal stored, duplicates, rejected
            if not batch:
                return
            try:
                result = ingest(batch, via=BatchVia.FILE, source_hint=source_default)
            except BatchRejected as error:
                raise CommandError(error.message) from error
            if result.batch_id is not None:
                batch_ids.append(result.batch_id)
            stored += result.accepted
            duplicates += result.duplicates
            rejected += result.rejected
            for index, entry in enumerate(result.results):
                if entry["status"] == "rejected":
                    errors = "; ".join(f"{e['field']}: {e['message']}" for e in entry["errors"])
                    self.stderr.write(f"rejected {entry['id']!r}: {errors}")
            batch.clear()

        # Store the whole file first, then apply once: references may come later in the file.
        with deferred_processing(), file.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    batch.append(json.loads(line))
                except json.JSONDecodeError as error:
                    # A line that is not JSON is rejected like an invalid envelope.
                    rejected += 1
                    self.stderr.write(f"rejected line {number}: not JSON ({error.msg})")
                    continue
                if len(batch) >= BATCH_SIZE:
                    flush()
            flush()
        process_pending()
        statuses = Counter(dict(Event.objects.filter(batch_id__in=batch_ids).values_list("status").annotate(n=Count("pk")).order_by()))
        self.stdout.write(
            f"stored {stored}, duplicates {duplicates}, rejected {rejected}, "
            f"applied {statuses['applied']}, stale {statuses['stale']}, parked {statuses['parked']}, "
            f"failed {statuses['failed']}, pending {statuses['pending']}"
        )
