"""Value types of the pure allocation engine (no Django).

The Django load/persist layer builds an :class:`EngineInput` from the database,
calls :func:`allocation.engine.allocate` and writes back the
:class:`EngineResult`. Quantities are ``Decimal``; dates are ``datetime.date``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import NamedTuple

from allocation.engine import explain

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
    # Case routing (allocation.md "Exceptions a run raises").
    promise_risk_tolerance_days: int = 0
    exception_min_value: Decimal = Decimal(0)
    # Depth settings (allocation.md "Depth settings"); each default leaves the rules unchanged.
    allocation_horizon_days: int | None = None
    freeze_days: int = 0
    min_fill_pct: float = 0.0
    share_mode: str = "rank"
    factor_plugins: tuple[tuple[str, float], ...] = ()
    execution_mode: str = "auto"


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


# The result values below are named tuples, not dataclasses: a run makes one of each per
# line and allocation (hundreds of thousands), and building a tuple costs a fraction of a
# frozen dataclass's __init__. They are just as immutable and are read by field name.


class AllocationDecision(NamedTuple):
    line_key: int
    item: str
    location: str
    supply_ref: str | None
    quantity: Decimal
    confirmed_date: date
    state: str
    existing_id: int | None = None  # id of the ExistingAllocation it keeps unchanged


class Factor(NamedTuple):
    name: str
    value: float
    weight: float
    contribution: float


class LineDecision(NamedTuple):
    """One line's decision; its explanation is kept as facts and rendered when read
    (:mod:`allocation.engine.explain`)."""

    line_key: int
    rank: int  # 1-based position in processing order
    rank_key: tuple
    score: float
    factor_values: tuple[float, ...]  # in DEFAULT_WEIGHTS order
    weights: tuple[float, ...]  # the line's merged weights, same order
    strategy: str
    priority_class: int
    allocations: tuple[AllocationDecision, ...]
    path_facts: tuple  # supply steps taken (explain.path_texts)
    constraint_facts: tuple  # what it could not get and why (explain.constraint_texts)
    shortfall: Decimal
    fingerprint: str  # stable hash of allocations (+ strategy/class)
    places: int = 0  # decimal places of the scaled quantities in the facts

    @property
    def factors(self) -> tuple[Factor, ...]:
        """Each factor's value, weight and contribution, in ``DEFAULT_WEIGHTS`` order."""
        return tuple(
            Factor(name, value, weight, weight * value)
            for name, value, weight in zip(DEFAULT_WEIGHTS, self.factor_values, self.weights)
        )

    @property
    def path(self) -> tuple[str, ...]:
        """The human-readable supply steps taken."""
        return explain.path_texts(self.path_facts, self.places)

    @property
    def constraints(self) -> tuple[str, ...]:
        """What the line could not get and why."""
        return explain.constraint_texts(self.constraint_facts, self.places)


class RaisedException(NamedTuple):
    """A condition a run raised; ``message`` and ``details`` are rendered from ``facts``."""

    type: str
    key: str
    line_key: int | None
    order: str | None
    item: str | None
    location: str | None
    facts: tuple

    @property
    def message(self) -> str:
        return explain.exception_message(self.type, self.facts)

    @property
    def details(self) -> dict:  # JSON-able, a new dict on every read
        return explain.exception_details(self.type, self.facts)


@dataclass(frozen=True, slots=True)
class EngineResult:
    lines: tuple[LineDecision, ...]
    exceptions: tuple[RaisedException, ...]
