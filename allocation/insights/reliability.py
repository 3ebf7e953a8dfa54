"""Supplier reliability (issue 13 item 1): the probability an open supply arrives by its ETA.

The model is a Laplace-smoothed on-time rate (a Beta(1, 1) prior: ``(on_time + 1) / (n + 2)``)
counted from ``SupplyReceipt`` history (a receipt is on time when received on or before the ETA
the supply carried, ``days_late <= 0``), at the most specific level that has at least
``min_receipts`` receipts: supplier + location + kind, else the supplier, else the supply kind.
Its delay distribution at that level is the mean and the 90th percentile (nearest rank) of the
days late (early counts as 0). Below ``min_receipts`` at every level there is no estimate and the
sent confidence stands.

Governance (``train``): receipts are ordered by receipt date, the last ``holdout_fraction`` are
held out, the model is fitted on the rest and scored on them: Brier score and calibration bins
of the on-time probability (against the sent confidence as the rule it replaces), mean absolute
error of the days late. It is ``active`` only with enough rows and a Brier score at most
``max_brier`` and no worse than the rule; otherwise it is a ``fallback`` and says why. The
active model is then refitted on all receipts and scores every open supply
(``SupplyEstimate``); allocation runs count a supply with the model's probability when
``ALLOT_RELIABILITY_CONFIDENCE`` is on (``apply_confidence``, called by ``allocation.loading``).

The core (``fit``, ``estimate``, ``backtest``) is pure Python on plain values: no numpy needed for
counts and a percentile, no network.
"""
from __future__ import annotations

import datetime as dt
import math
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

MODEL_NAME = "supplier_reliability"
INPUTS = [
    "SupplyReceipt.days_late (received date minus the ETA the supply carried)",
    "Supply.supplier, Supply.location, Supply.kind",
    "Supply.confidence (the sent confidence: the rule it is compared with)",
]
LEVELS = ("supplier+location+kind", "supplier", "kind")
CALIBRATION_BINS = 5


def _setting(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


def min_receipts() -> int:
    return int(_setting("ALLOT_RELIABILITY_MIN_RECEIPTS", 5))


@dataclass(frozen=True, slots=True)
class Receipt:
    supplier: str
    location: str
    kind: str
    received: dt.date
    days_late: int
    sent_confidence: float = 1.0

    @property
    def on_time(self) -> bool:
        return self.days_late <= 0


@dataclass(slots=True)
class Stats:
    n: int = 0
    on_time: int = 0
    late_days: list[int] = field(default_factory=list)  # max(days_late, 0) per receipt
    _delay: tuple[float, float] | None = None  # computed once, after fitting

    @property
    def probability(self) -> float:
        return (self.on_time + 1) / (self.n + 2)

    def delay(self) -> tuple[float, float]:
        if self._delay is None:
            values = sorted(self.late_days)
            rank = max(math.ceil(0.9 * len(values)), 1)
            self._delay = (sum(values) / len(values), float(values[rank - 1]))
        return self._delay


@dataclass(frozen=True, slots=True)
class Estimate:
    probability: float
    mean_days_late: float
    p90_days_late: float
    receipts: int
    level: str


def _keys(supplier: str, location: str, kind: str) -> list[tuple[str, tuple]]:
    keys = []
    if supplier:
        keys.append((LEVELS[0], (supplier, location, kind)))
        keys.append((LEVELS[1], (supplier,)))
    keys.append((LEVELS[2], (kind,)))
    return keys


Table = dict[tuple[str, tuple], Stats]


def fit(receipts: Iterable[Receipt]) -> Table:
    """Counts per level key: one pass over the receipts."""
    table: Table = defaultdict(Stats)
    for receipt in receipts:
        late = max(receipt.days_late, 0)
        for key in _keys(receipt.supplier, receipt.location, receipt.kind):
            stats = table[key]
            stats.n += 1
            stats.on_time += receipt.on_time
            stats.late_days.append(late)
    return dict(table)


def estimate(table: Table, *, supplier: str, location: str, kind: str, minimum: int | None = None) -> Estimate | None:
    """The estimate at the most specific level with at least ``minimum`` receipts, else None."""
    minimum = min_receipts() if minimum is None else minimum
    for key in _keys(supplier, location, kind):
        stats = table.get(key)
        if stats is not None and stats.n >= max(minimum, 1):
            mean, p90 = stats.delay()
            return Estimate(stats.probability, mean, p90, stats.n, key[0])
    return None


def backtest(receipts: Sequence[Receipt], *, holdout_fraction: float = 0.3, minimum: int | None = None) -> dict[str, Any]:
    """Fit on the earlier receipts, score on the later ones (computed, never asserted)."""
    ordered = sorted(receipts, key=lambda r: r.received)
    cut = int(len(ordered) * (1 - holdout_fraction))
    train, test = ordered[:cut], ordered[cut:]
    table = fit(train)
    squared = baseline = absolute = 0.0
    covered = 0
    bins = [[0, 0.0, 0] for _ in range(CALIBRATION_BINS)]  # count, sum of p, on time
    for receipt in test:
        found = estimate(table, supplier=receipt.supplier, location=receipt.location, kind=receipt.kind, minimum=minimum)
        outcome = 1.0 if receipt.on_time else 0.0
        p = found.probability if found else receipt.sent_confidence
        covered += found is not None
        squared += (p - outcome) ** 2
        baseline += (receipt.sent_confidence - outcome) ** 2
        absolute += abs((found.mean_days_late if found else 0.0) - max(receipt.days_late, 0))
        slot = bins[min(int(p * CALIBRATION_BINS), CALIBRATION_BINS - 1)]
        slot[0] += 1
        slot[1] += p
        slot[2] += outcome
    n = len(test)
    return {
        "train_rows": len(train),
        "holdout_rows": n,
        "holdout_from": test[0].received.isoformat() if test else None,
        "covered": covered,
        "brier": round(squared / n, 4) if n else None,
        "baseline_brier": round(baseline / n, 4) if n else None,
        "mae_days": round(absolute / n, 3) if n else None,
        "on_time_rate": round(sum(r.on_time for r in test) / n, 4) if n else None,
        "calibration": [
            {
                "bin": f"{i / CALIBRATION_BINS:.1f}-{(i + 1) / CALIBRATION_BINS:.1f}",
                "count": count,
                "mean_predicted": round(total / count, 3) if count else None,
                "observed": round(hits / count, 3) if count else None,
            }
            for i, (count, total, hits) in enumerate(bins)
        ],
    }


def judge(quality: dict[str, Any], *, rows: int) -> tuple[bool, str]:
    """Active or fallback, with the reason in words."""
    min_rows = int(_setting("ALLOT_MODEL_MIN_TRAINING_ROWS", 20))
    max_brier = float(_setting("ALLOT_MODEL_MAX_BRIER", 0.25))
    if rows < min_rows:
        return False, f"only {rows} receipts (at least {min_rows} needed): the sent confidence stands"
    if not quality.get("holdout_rows") or quality.get("brier") is None:
        return False, "no held-out receipts to backtest on: the sent confidence stands"
    if quality["covered"] == 0:
        return False, "no held-out receipt had enough history for an estimate: the sent confidence stands"
    if quality["brier"] > max_brier:
        return False, f"Brier score {quality['brier']} above the maximum {max_brier}: the sent confidence stands"
    if quality["brier"] > quality["baseline_brier"]:
        return False, (
            f"Brier score {quality['brier']} worse than the sent confidence's {quality['baseline_brier']}: "
            "the sent confidence stands"
        )
    return True, (
        f"Brier {quality['brier']} (sent confidence {quality['baseline_brier']}) on {quality['holdout_rows']} "
        f"held-out receipts, at most {max_brier}: the model's on-time probability is used"
    )


# --- Database glue -------------------------------------------------------------------------


def receipt_history(as_of: dt.date) -> list[Receipt]:
    """Every receipt up to ``as_of`` with its supply's supplier, location and kind (one query)."""
    from allocation.models import SupplyReceipt

    end = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)
    rows = (
        SupplyReceipt.objects.filter(received_at__lt=end)
        .order_by("received_at", "id")
        .values_list("supply__supplier", "supply__location__code", "supply__kind", "received_at", "days_late", "supply__confidence")
    )
    return [
        Receipt(supplier, location, kind, received.date(), days_late, float(confidence))
        for supplier, location, kind, received, days_late, confidence in rows
    ]


def enabled() -> bool:
    return bool(_setting("ALLOT_RELIABILITY_CONFIDENCE", True))


def train(*, as_of: dt.date, actor: str = "") -> Any:
    """Backtest, judge, refit on all history and score every open supply; returns the ModelVersion."""
    from allocation.choices import SupplyStatus
    from allocation.models import ModelStatus, ModelVersion, Supply, SupplyEstimate

    started = time.perf_counter()
    history = receipt_history(as_of)
    minimum = min_receipts()
    quality = backtest(history, minimum=minimum)
    active, reason = judge(quality, rows=len(history))
    table = fit(history)
    fit_seconds = time.perf_counter() - started
    now = timezone.now()
    supplies = list(
        Supply.objects.filter(status=SupplyStatus.OPEN, quantity__gt=F("received_quantity")).values_list(
            "pk", "supplier", "location__code", "kind", "confidence"
        )
    )
    with transaction.atomic():
        last = ModelVersion.objects.filter(name=MODEL_NAME).order_by("-version").values_list("version", flat=True).first()
        version = ModelVersion.objects.create(
            name=MODEL_NAME,
            version=(last or 0) + 1,
            inputs=INPUTS,
            params={
                "prior": "Beta(1, 1) (Laplace)",
                "levels": list(LEVELS),
                "min_receipts": minimum,
                "holdout_fraction": 0.3,
                "min_training_rows": int(_setting("ALLOT_MODEL_MIN_TRAINING_ROWS", 20)),
                "max_brier": float(_setting("ALLOT_MODEL_MAX_BRIER", 0.25)),
                "used_by_runs": enabled(),
            },
            trained_at=now,
            as_of=as_of,
            training_rows=len(history),
            holdout_rows=quality["holdout_rows"],
            quality=quality,
            status=ModelStatus.ACTIVE if active else ModelStatus.FALLBACK,
            reason=reason[:300],
            fit_seconds=round(fit_seconds, 4),
            trained_by=actor,
        )
        estimates = []
        for pk, supplier, location, kind, confidence in supplies:
            found = estimate(table, supplier=supplier, location=location, kind=kind, minimum=minimum)
            use_model = active and found is not None
            if found is None:
                note = f"fewer than {minimum} receipts for this supplier, location and kind: sent confidence"
            elif not active:
                note = f"model in fallback ({reason})"
            else:
                note = f"{found.receipts} receipts at {found.level} level"
            estimates.append(
                SupplyEstimate(
                    supply_id=pk,
                    model_version=version,
                    on_time_probability=round(found.probability, 4) if found else None,
                    mean_days_late=round(found.mean_days_late, 2) if found else None,
                    p90_days_late=found.p90_days_late if found else None,
                    receipts=found.receipts if found else 0,
                    level=found.level if found else "none",
                    confidence_used=round(found.probability, 3) if use_model else float(confidence),
                    confidence_source="model" if use_model else "sent",
                    note=note[:300],
                    updated_at=now,
                )
            )
        SupplyEstimate.objects.all().delete()
        SupplyEstimate.objects.bulk_create(estimates, batch_size=2000)
    return version


def apply_confidence(inbound: Sequence[Any]) -> tuple:
    """Inbound with the model's confidence where it has one (``allocation.loading``; one query).

    Only estimates the active model made (``confidence_source == "model"``) replace the sent
    confidence, and only while ``ALLOT_RELIABILITY_CONFIDENCE`` is on.
    """
    if not inbound or not enabled():
        return tuple(inbound)
    from allocation.models import SupplyEstimate

    model = dict(SupplyEstimate.objects.filter(confidence_source="model").values_list("supply__ref", "confidence_used"))
    if not model:
        return tuple(inbound)
    return tuple(replace(entry, confidence=model[entry.ref]) if entry.ref in model else entry for entry in inbound)
