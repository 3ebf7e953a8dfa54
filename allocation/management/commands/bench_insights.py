"""``python manage.py bench_insights [--lines 100000] [--receipts 100000] [--json]``: decision-support figures.

Pure computation, no database (CPU seconds of this process, so a busy machine does not inflate them): the reliability model's fit, backtest and scoring of open supply
on synthetic receipts (suppliers of known lateness), and late-order risk for every line of the
engine's synthetic input with the ``risk`` factor weighted (allocation.insights.risk.apply).
"""
from __future__ import annotations

import datetime as dt
import json
import random
import time
from dataclasses import replace

from django.core.management.base import BaseCommand, CommandParser

from allocation.engine.synthetic import synthetic_input
from allocation.insights import reliability, risk


class Command(BaseCommand):
    help = "Time the decision-support models (fit, backtest, scoring) and late-order risk at scale."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--lines", type=int, default=100_000)
        parser.add_argument("--receipts", type=int, default=100_000)
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        rng = random.Random(7)
        suppliers = [(f"SUP-{i:02d}", rng.uniform(0.05, 0.9)) for i in range(40)]
        locations, kinds = [f"DC-{i}" for i in range(14)], ["purchase_order", "asn"]
        start = dt.date(2025, 1, 1)
        history = []
        for n in range(options["receipts"]):
            supplier, late_share = rng.choice(suppliers)
            late = rng.randint(1, 9) if rng.random() < late_share else rng.randint(-2, 0)
            history.append(reliability.Receipt(supplier, rng.choice(locations), rng.choice(kinds),
                                               start + dt.timedelta(days=n * 500 // options["receipts"]), late, 0.9))
        figures = {"receipts": len(history)}
        began = time.process_time()
        quality = reliability.backtest(history, minimum=5)
        figures["backtest_s"] = round(time.process_time() - began, 3)
        began = time.process_time()
        table = reliability.fit(history)
        figures["fit_s"] = round(time.process_time() - began, 3)
        began = time.process_time()
        found = [reliability.estimate(table, supplier=s, location=loc, kind=k, minimum=5)
                 for s, loc, k in ((rng.choice(suppliers)[0], rng.choice(locations), rng.choice(kinds)) for _ in range(100_000))]
        figures["score_100k_supplies_s"] = round(time.process_time() - began, 3)
        figures["estimated"] = sum(f is not None for f in found)
        figures["brier"], figures["baseline_brier"], figures["mae_days"] = quality["brier"], quality["baseline_brier"], quality["mae_days"]

        engine_input = synthetic_input(options["lines"], seed=3)
        weighted = [
            replace(line, settings=replace(line.settings, weights=tuple((k, 0.1 if k == "risk" else w) for k, w in line.settings.weights)))
            for line in engine_input.lines
        ]
        began = time.process_time()
        scored = risk.apply(weighted, engine_input.existing, engine_input.inbound)
        figures["lines"] = len(scored)
        figures["risk_score_s"] = round(time.process_time() - began, 3)
        figures["risk_mean"] = round(sum(line.risk for line in scored) / len(scored), 3)
        began = time.process_time()
        risk.apply(engine_input.lines, engine_input.existing, engine_input.inbound)
        figures["risk_unweighted_s"] = round(time.process_time() - began, 4)
        self.stdout.write(json.dumps(figures, indent=None if options["json"] else 2))
