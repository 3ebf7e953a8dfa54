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
    # Custom score factors computed outside the engine (allocation/plugins.py): (registered
    # name, value in [0, 1]); weighted by ``settings.factor_plugins``, a name without a
    # weight there counts nothing, a weighted name without a value counts 0.
    plugin_factors: tuple[tuple[str, float], ...] = ()
    order_kind: str = "order"  # "order" | "quote": a scope dimension only; ranked like orders


@dataclass(frozen=True, slots=True)
class Item:
    sku: str
    item_class: str
    substitutes: tuple[str, ...]  # priority order
    pack_size: Decimal = Decimal(1)  # a line takes whole packs from one supply element (positive)


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


class ShortfallReason(NamedTuple):
    """Why part of a short line is short (allocation.md "Depth settings", shortfall reasons).

    ``quantity`` (Decimal, the line's unit) is what this reason explains; the reasons of one
    line are exclusive and their quantities sum to its shortfall. ``subject`` names what the
    reason is about, per ``code`` (see ``explain.SHORTFALL_SUBJECTS``); ``explain.shortfall_text``
    renders it in words and ``explain.shortfall_json`` as a JSON-able dict.
    """

    code: str
    quantity: Decimal
    subject: tuple = ()

    @property
    def text(self) -> str:
        return explain.shortfall_text(self)

    def as_json(self) -> dict:
        return explain.shortfall_json(self)


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
    # Depth (allocation.md "Depth settings"); defaults are what a line without them gets.
    shortfall_reasons: tuple[ShortfallReason, ...] = ()  # on every short line, quantities sum to shortfall
    projected_date: date | None = None  # eta of the inbound (any confidence) that would cover the shortfall
    actionable: bool = False  # short, and some supply it could use is not fixed: an action today could help
    plugin_factors: tuple[Factor, ...] = ()  # custom factors weighted by settings.factor_plugins

    @property
    def factors(self) -> tuple[Factor, ...]:
        """Each factor's value, weight and contribution, in ``DEFAULT_WEIGHTS`` order, then
        the custom (plugin) factors in ``factor_plugins`` order."""
        found = tuple(
            Factor(name, value, weight, weight * value)
            for name, value, weight in zip(DEFAULT_WEIGHTS, self.factor_values, self.weights)
        )
        return found + self.plugin_factors if self.plugin_factors else found

    @property
    def shortfall_texts(self) -> tuple[str, ...]:
        """The shortfall reasons in a planner's words."""
        return tuple(explain.shortfall_text(reason) for reason in self.shortfall_reasons)

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


class FairnessPrice(NamedTuple):
    """What fair share cost one strategy and priority class (allocation.md "Fair share").

    ``rank_fill`` and ``fill`` are priority-weighted fill rates in [0, 1]:
    ``Σ score × covered / Σ score × open quantity`` over the class's lines (unweighted when
    every score is 0), covered counting fixed allocations; ``rank_fill`` is what a ``rank``
    mode pass of the class would have given from the same supply, ``fill`` what it got.
    """

    strategy: str
    priority_class: int
    share_mode: str  # pro_rata | equal
    lines: int
    rank_fill: float
    fill: float
    price: float  # rank_fill - fill


@dataclass(frozen=True, slots=True)
class EngineResult:
    lines: tuple[LineDecision, ...]
    exceptions: tuple[RaisedException, ...]
    fairness: tuple[FairnessPrice, ...] = ()  # one per class that shared in pro_rata/equal mode
