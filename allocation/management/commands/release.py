"""``python manage.py release [--location CODE] [--preview] [--json]``: run release waves.

Runs a wave at one location, or at every location (in code order), started by the command.
``--preview`` prints what each wave would release and hold back, changing nothing. Exit
status 1 when a wave failed or was already running at a location.
"""
from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from allocation import releases
from allocation.choices import WaveOutcome, WaveStatus, WaveTrigger
from allocation.errors import WaveAlreadyRunning, WaveError
from allocation.models import Location
from config import bounds


class Command(BaseCommand):
    help = "Release reserved lines to the warehouse in waves (one location, or every location)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--location", help="location code (default: every location)")
        parser.add_argument("--preview", action="store_true", help="show what would be released; change nothing")
        parser.add_argument("--json", action="store_true", help="one JSON object per location")

    def handle(self, *args, **options) -> None:
        code = options.get("location")
        if code is not None:
            problem = bounds.text_problem(code)
            if problem is not None or len(code) > 64:
                raise CommandError(f"--location: {problem or 'at most 64 characters'}")
            try:
                locations = [releases.location_for_code(code)]
            except WaveError as error:
                raise CommandError(error.message) from None
        else:
            locations = list(Location.objects.order_by("code"))
        failed = False
        for location in locations:
            if options["preview"]:
                self._show_plan(releases.plan_wave(location), as_json=options["json"])
                continue
            try:
                wave = releases.run_wave(location, None, trigger=WaveTrigger.COMMAND)
            except WaveAlreadyRunning as busy:
                failed = True
                self.stderr.write(f"{location.code}: {busy.message}")
                continue
            failed |= wave.status == WaveStatus.FAILED
            if options["json"]:
                from allocation.api.waves import wave_json

                self.stdout.write(json.dumps(wave_json(wave, with_lines=False)))
            else:
                self.stdout.write(
                    f"{location.code}: wave #{wave.pk} {wave.status}: {wave.released_count} of "
                    f"{wave.considered_count} line(s) released, {wave.held_count} held back "
                    f"({wave.approval_count} for approval), {wave.duration_ms} ms"
                    + (f" — {wave.error}" if wave.error else "")
                )
        if failed:
            raise SystemExit(1)

    def _show_plan(self, plan: releases.WavePlan, *, as_json: bool) -> None:
        if as_json:
            from allocation.api.waves import plan_json

            self.stdout.write(json.dumps(plan_json(plan)))
            return
        capacity = plan.capacity
        limit = "unlimited" if capacity.capacity is None else f"{capacity.remaining} of {capacity.capacity} left"
        self.stdout.write(
            f"{plan.location.code} {capacity.day.isoformat()} (capacity {limit}): would release "
            f"{len(plan.released)} of {len(plan.lines)} line(s), hold back {len(plan.held)}"
        )
        for line in plan.lines:
            why = "" if line.outcome == WaveOutcome.RELEASED else f"  [{line.reason}] {line.detail}"
            self.stdout.write(
                f"  {line.outcome:9} rank {line.rank or '-':>6} {line.order_number}/{line.line_number} "
                f"{line.sku} {line.quantity.normalize():f}{why}"
            )
