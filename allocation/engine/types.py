"""Value types of the pure allocation engine (no Django).

The Django load/persist layer builds an :class:`EngineInput` from the database,
calls :func:`allocation.engine.allocate` and writes back the
:class:`EngineResult`. Quantities are ``Decimal``; dates are ``datetime.date``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

STRATEGY_ORDER = ("win", "gain", "redistribute", "fill", "lose")
DEFAULT_WEIGHTS = {
    "tier": 0.35,
    "urgency": 0.25,
    "margin": 0.15,
    "value": 0.10,
    "age": 0.10,
    "penalty": 0.05,
    "risk": 0.0,
}


@dataclass(frozen=True, slots=True)
class LineSettings:
    """Effective policy settings of one line (already resolved)."""

    strategy: str
    priority_class: int
    weights: tuple[tuple[str, float], ...]  # full merged set, factor order as DEFAULT_WEIGHTS
    urgency_horizon_days: int
    allow_partial: bool
    max_split_locations: int
    inbound_min_confidence: float
    allow_substitutes: bool
    substitute_needs_approval: bool
    auto_release_max_value: Decimal | None
    override_approval_min_value: Decimal | None
    margin_floor_pct: float | None
    sources: tuple[tuple[str, int | None], ...] = ()  # setting -> rule position (None = default)


@dataclass(frozen=True, slots=True)
class Line:
    """One open order line (quantity is the open quantity)."""

    key: int  # OrderLine pk
    order: str
    line: int
    customer: str
    customer_tier: int
    customer_segment: str
    customer_region: str
    late_penalty_per_day: Decimal
    channel: str
    item: str
    item_class: str
    quantity: Decimal
    unit_price: Decimal
    unit_cost: Decimal
    requested_date: date
    promised_date: date | None
    order_created_at: datetime
    allow_substitute: bool
    ship_from: str | None
    home_location: str | None
    ship_complete: bool
    credit_hold: bool
    settings: LineSettings
    risk: float = 0.0


@dataclass(frozen=True, slots=True)
class Item:
    sku: str
    item_class: str
    substitutes: tuple[str, ...]  # priority order


@dataclass(frozen=True, slots=True)
class Lane:
    location: str
    region: str
    transit_days: int
    cost_per_unit: Decimal


@dataclass(frozen=True, slots=True)
class OnHand:
    item: str
    location: str
    available: Decimal  # on_hand - holds, >= 0, before stale buffer
    stale: bool = False


@dataclass(frozen=True, slots=True)
class Inbound:
    ref: str
    item: str
    location: str
    quantity: Decimal
    eta: date
    confidence: float


@dataclass(frozen=True, slots=True)
class ExistingAllocation:
    id: int
    line_key: int
    item: str
    location: str
    supply_ref: str | None
    quantity: Decimal
    confirmed_date: date
    state: str  # proposed|reserved|released|pinned


@dataclass(frozen=True, slots=True)
class Protection:
    index: int
    sku: str
    location: str
    quantity: Decimal
    scope: tuple[tuple[str, str], ...]  # dimension -> value


@dataclass(frozen=True, slots=True)
class Quota:
    index: int
    sku: str | None
    item_class: str | None
    scope: tuple[tuple[str, str], ...]
    period: str  # day|week|month
    quantity: Decimal


@dataclass(frozen=True, slots=True)
class EngineInput:
    as_of: date
    lines: tuple[Line, ...]
    items: tuple[Item, ...]
    locations: tuple[str, ...]
    lanes: tuple[Lane, ...]
    on_hand: tuple[OnHand, ...]
    inbound: tuple[Inbound, ...]
    existing: tuple[ExistingAllocation, ...]
    protections: tuple[Protection, ...] = ()
    quotas: tuple[Quota, ...] = ()
    stale_feed_buffer_pct: float = 10.0


@dataclass(frozen=True, slots=True)
class AllocationDecision:
    line_key: int
    item: str
    location: str
    supply_ref: str | None
    quantity: Decimal
    confirmed_date: date
    state: str
    existing_id: int | None = None  # id of the ExistingAllocation it keeps unchanged


@dataclass(frozen=True, slots=True)
class Factor:
    name: str
    value: float
    weight: float
    contribution: float


@dataclass(frozen=True, slots=True)
class LineDecision:
    line_key: int
    rank: int  # 1-based position in processing order
    rank_key: tuple
    score: float
    factors: tuple[Factor, ...]
    strategy: str
    priority_class: int
    allocations: tuple[AllocationDecision, ...]
    path: tuple[str, ...]  # human-readable supply steps taken
    constraints: tuple[str, ...]  # what it could not get and why
    shortfall: Decimal
    fingerprint: str  # stable hash of allocations (+ strategy/class)


@dataclass(frozen=True, slots=True)
class RaisedException:
    type: str
    key: str
    line_key: int | None
    order: str | None
    item: str | None
    location: str | None
    message: str
    details: dict = field(hash=False, compare=True)  # JSON-able


@dataclass(frozen=True, slots=True)
class EngineResult:
    lines: tuple[LineDecision, ...]
    exceptions: tuple[RaisedException, ...]
