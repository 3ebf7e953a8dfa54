"""Decision support as one refresh (beat, the ``models`` command): thin over the modules."""
from __future__ import annotations

import datetime as dt
import time
from typing import Any

from allocation.insights import expedite, reliability, risk, stockout, transfers


def refresh(*, as_of: dt.date | None = None, actor: str = "") -> dict[str, Any]:
    from allocation.dates import business_today

    as_of = as_of or business_today()
    started = time.perf_counter()
    version = reliability.train(as_of=as_of, actor=actor)
    risk_version = risk.record_version(as_of=as_of, actor=actor)
    at_risk = stockout.check(as_of)
    recommended = transfers.refresh(as_of)
    expedites = expedite.refresh(as_of)
    return {
        "model": model_json(version),
        "late_order_risk_model": model_json(risk_version),
        "stockout_risk": at_risk,
        "transfers": recommended,
        "expedites": expedites,
        "seconds": round(time.perf_counter() - started, 3),
    }


def model_json(version: Any) -> dict[str, Any]:
    return {
        "name": version.name,
        "version": version.version,
        "status": version.status,
        "reason": version.reason,
        "inputs": version.inputs,
        "params": version.params,
        "trained_at": version.trained_at.isoformat(),
        "as_of": version.as_of.isoformat(),
        "training_rows": version.training_rows,
        "holdout_rows": version.holdout_rows,
        "quality": version.quality,
        "fit_seconds": version.fit_seconds,
        "estimates": version.estimates.count(),
        "estimates_used": version.estimates.filter(confidence_source="model").count(),
    }
