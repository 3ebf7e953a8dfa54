"""Ingest a JSON Lines file of canonical events through the same path as the API.

Each line is parsed by ``config.jsonlimits.parse_json`` (the API's size and nesting limits),
so a line that is not JSON, is nested too deep, is not UTF-8 or is too long is reported with
its number and skipped, and every other line is still ingested. Exit status: 0 when every
line was stored (or was a duplicate), 2 when some lines were bad (each named on stderr; the
rest are stored and applied), 1 when nothing could be done (no such file, a refused batch).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count

from config import jsonlimits
from integrations.choices import BatchVia
from integrations.errors import BatchRejected
from integrations.models import Event
from integrations.services import deferred_processing, ingest, process_pending

BATCH_SIZE = 5000
SOME_LINES_BAD = 2


def numbered_lines(handle: BinaryIO, limit: int) -> Iterator[tuple[int, bytes | None]]:
    """``(line number, bytes)`` of each line, or ``(number, None)`` for a line over ``limit``
    bytes, which is skipped without being held in memory whole."""
    number = 0
    while raw := handle.readline(limit + 1):
        number += 1
        if len(raw) > limit and not raw.endswith(b"\n"):
            while (rest := handle.readline(limit + 1)) and not rest.endswith(b"\n"):
                pass
            yield number, None
            continue
        yield number, raw


class Command(BaseCommand):
    help = (
        "Ingest FILE.jsonl (one canonical event a line) in batches of 5,000, then apply them. "
        "A bad line is reported with its number and skipped; exit status 2 if any line was bad."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--source-default", default=None, help="source for events that name none")

    def handle(self, *args, file: Path, source_default: str | None, **options) -> None:
        if not file.is_file():
            raise CommandError(f"{file} does not exist")
        limit = settings.ALLOT_MAX_BATCH_BYTES
        batch_size = min(BATCH_SIZE, settings.ALLOT_MAX_BATCH_EVENTS)
        stored = duplicates = rejected = unreadable = lines = 0
        batch: list[Any] = []
        numbers: list[int] = []
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
            for number, entry in zip(numbers, result.results, strict=True):
                if entry["status"] == "rejected":
                    errors = "; ".join(f"{e['field']}: {e['message']}" for e in entry["errors"])
                    self.stderr.write(f"line {number}: rejected {entry['id']!r}: {errors}")
            batch.clear()
            numbers.clear()

        # Store the whole file first, then apply once: references may come later in the file.
        with deferred_processing(), file.open("rb") as handle:
            for number, raw in numbered_lines(handle, limit):
                if raw is None:
                    unreadable += 1
                    lines += 1
                    self.stderr.write(f"line {number}: skipped, longer than {limit} bytes")
                    continue
                if not raw.strip():
                    continue
                lines += 1
                try:
                    event = jsonlimits.parse_json(raw, max_bytes=limit)
                except jsonlimits.JSONBodyError as error:
                    unreadable += 1
                    self.stderr.write(f"line {number}: skipped, {error.message}")
                    continue
                batch.append(event)
                numbers.append(number)
                if len(batch) >= batch_size:
                    flush()
            flush()
        process_pending()
        statuses = Counter(dict(Event.objects.filter(batch_id__in=batch_ids).values_list("status").annotate(n=Count("pk")).order_by()))
        self.stdout.write(
            f"stored {stored}, duplicates {duplicates}, rejected {rejected}, "
            f"applied {statuses['applied']}, stale {statuses['stale']}, parked {statuses['parked']}, "
            f"failed {statuses['failed']}, pending {statuses['pending']}"
            + (f", unreadable {unreadable}" if unreadable else "")
        )
        bad = rejected + unreadable
        if bad:
            raise CommandError(
                f"{bad} of {lines} lines were not ingested (named above); the other lines were.",
                returncode=SOME_LINES_BAD,
            )
