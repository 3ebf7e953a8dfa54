"""Sample factor plugins (registered by default; see :mod:`allocation.plugins`).

``expedite_flag`` is a per-line factor; ``strategic_item`` shows the bulk protocol (one query for
every line a run scores). Neither adds anything to a score until a policy weights it, e.g.
``{"scope": {"channel": "field_sales"}, "settings": {"factor_plugins": {"expedite_flag": 0.2}}}``.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings

DEFAULT_EXPEDITE_CHANNELS = ("expedite", "emergency")


def expedite_flag(line: Any) -> float:
    """1 for a line ordered through an expedite channel (``ALLOT_EXPEDITE_CHANNELS``, default
    expedite and emergency), else 0."""
    channels = getattr(settings, "ALLOT_EXPEDITE_CHANNELS", DEFAULT_EXPEDITE_CHANNELS)
    return 1.0 if line.channel in channels else 0.0


def strategic_item(line: Any) -> float:
    """1 for a line of an item whose class is listed in ``ALLOT_STRATEGIC_ITEM_CLASSES``, else 0
    (computed in bulk: the setting is read once per run)."""
    return strategic_item.bulk([line])[0]


def _strategic_bulk(lines: Sequence[Any]) -> list[float]:
    classes = frozenset(getattr(settings, "ALLOT_STRATEGIC_ITEM_CLASSES", ()))
    return [1.0 if line.item_class in classes else 0.0 for line in lines]


strategic_item.bulk = _strategic_bulk  # type: ignore[attr-defined]
