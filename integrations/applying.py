"""Applying a chunk of stored events to the domain model, set-based.

``ChunkApplier`` loads every record the chunk's events name in a few queries, applies the
events one by one to those in-memory records (in ``occurred_at`` order, deferring events
whose references arrive later in the same chunk), then writes every created or changed
record with one bulk statement per model, history rows included (``integrations.bulk``:
COPY on PostgreSQL, simple-history's bulk helpers elsewhere; the event is the change reason). An event that cannot apply
raises ``EventApplyError`` before it mutates anything, so it fails alone.

Items may name each other as substitutes (cycles, events-v1.md "Reference order"): an item
whose substitutes are created by other item events of the chunk applies, and its links are
completed once the chunk has created them; parked item versions that such a cycle needs are
pulled into the chunk. An adjustment that would take on-hand below zero sets it to zero and
is reported in ``negative_stock`` (the caller raises the data-quality exception).
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import Model, Q
from django.utils import timezone

from allocation.choices import AllocationState, LineStatus, OrderKind, OrderStatus, SupplyStatus
from allocation.models import (
    Allocation,
    Customer,
    InventoryPosition,
    Item,
    ItemSubstitute,
    Lane,
    Location,
    Order,
    OrderLine,
    Supply,
    SupplyReceipt,
)
from integrations import bulk
from integrations.choices import EventStatus, EventType
from integrations.errors import EventApplyError
from integrations.models import Event
from integrations.validation import parse_date, parse_timestamp, to_decimal

UPDATE_BATCH = 500
ZERO = Decimal(0)
# Consume a line's allocations in this order when a shipment confirms.
CONSUME_ORDER = {AllocationState.RELEASED: 0, AllocationState.PINNED: 1, AllocationState.RESERVED: 2, AllocationState.PROPOSED: 3}
# Models in the order their rows are written (foreign keys point backwards in this list).
WRITE_ORDER: list[type[Model]] = [Location, Item, Customer, Lane, ItemSubstitute, InventoryPosition, Supply, Order, OrderLine]


# The stored event fields processing reads (``.only()``).
EVENT_FIELDS = ("pk", "source_id", "event_id", "type", "occurred_at", "data", "attempts", "batch_id")
# The largest quantity a position holds (InventoryPosition: 14 digits, 3 decimal places).
MAX_QUANTITY = Decimal(10) ** 11 - Decimal("0.001")


def _fields(model: type[Model]) -> list[str]:
    return [f.name for f in model._meta.concrete_fields if not f.primary_key]


@dataclass
class Outcome:
    """What happened to one event: its final status, errors and missing references."""

    status: str
    errors: list[dict[str, str]] = field(default_factory=list)
    references: list[str] = field(default_factory=list)


@dataclass
class NegativeStock:
    """An adjustment that asked for more than the position held: on-hand was set to zero."""

    event: Any
    location: str
    sku: str
    on_hand: Decimal
    delta: Decimal

    @property
    def missing(self) -> Decimal:
        return -(self.on_hand + self.delta)


def quote_expiry(raw: Any) -> dt.datetime | None:
    """The instant a quote expires: an RFC 3339 ``expires_at`` as given, a date at the end of
    that day (midnight after it, in TIME_ZONE), None without one (the quote waits to be converted
    or cancelled)."""
    if raw is None:
        return None
    day = parse_date(raw)
    if day is not None:
        return timezone.make_aware(dt.datetime.combine(day + dt.timedelta(days=1), dt.time()))
    return parse_timestamp(raw)


def _bounded(quantity: Decimal, path: str, what: str) -> Decimal:
    if quantity > MAX_QUANTITY:
        raise EventApplyError(path, f"would take {what} above {MAX_QUANTITY}")
    return quantity


class ChunkApplier:
    """Applies a list of pending events (already ordered) and writes the result in bulk."""

    def __init__(self, events: list[Any], *, source_codes: dict[int, str], actors: dict[int, Any]) -> None:
        self.events = list(events)
        self.source_codes = source_codes
        self.actors = actors
        self.locations: dict[str, Location] = {}
        self.items: dict[str, Item] = {}
        self.customers: dict[str, Customer] = {}
        self.orders: dict[str, Order] = {}
        self.lines: dict[str, dict[int, OrderLine]] = defaultdict(dict)
        self.lanes: dict[tuple[str, str], Lane] = {}
        self.positions: dict[tuple[str, str], InventoryPosition] = {}
        self.position_keys_checked: set[tuple[str, str]] = set()
        self.supplies: dict[str, Supply] = {}
        self.substitutes: dict[str, dict[str, ItemSubstitute]] = {}
        self.allocations: dict[int, list[Allocation]] = defaultdict(list)
        self.new: dict[type[Model], list[Model]] = defaultdict(list)
        self.dirty: dict[type[Model], dict[int, Model]] = defaultdict(dict)
        self.deleted_substitutes: list[ItemSubstitute] = []
        self.deleted_allocations: dict[int, Allocation] = {}
        self.dirty_allocations: dict[int, Allocation] = {}
        self.receipts: list[SupplyReceipt] = []
        self.created_keys: set[str] = set()
        self.skus: set[str] = set()
        self.customers_touched: set[str] = set()
        self.outcomes: dict[int, Outcome] = {}
        # Skus some item event of this chunk will create, substitute cycles included.
        self.creatable_skus: set[str] = set()
        # Substitute links created before the chunk created their substitute item.
        self.unresolved_links: list[tuple[ItemSubstitute, str]] = []
        self.negative_stock: list[NegativeStock] = []
        # Positions an applied snapshot replaced: their negative-stock exceptions resolve.
        self.superseded_positions: set[tuple[str, str]] = set()

    # ------------------------------------------------------------------ loading
    def _pull_parked_item_versions(self) -> None:
        """Add to the chunk the parked item events a substitute named in the chunk waits for.

        Two items listing each other, delivered in different chunks or batches, leave the first
        parked for the second and the second waiting for the first: applying them together
        breaks the cycle. One query per round; rounds follow the substitute chain.
        """
        in_chunk = {e.data["sku"] for e in self.events if e.type == EventType.ITEM_UPSERTED}
        taken = {e.pk for e in self.events}
        stored: set[str] = set()
        frontier = [e for e in self.events if e.type == EventType.ITEM_UPSERTED]
        pulled = False
        while frontier:
            wanted = {s["sku"] for e in frontier for s in e.data.get("substitutes") or []} - in_chunk - stored
            if wanted:
                stored |= set(Item.objects.filter(sku__in=wanted).values_list("sku", flat=True))
                wanted -= stored
            if not wanted:
                break
            frontier = [
                e
                for e in Event.objects.filter(
                    status=EventStatus.PARKED, type=EventType.ITEM_UPSERTED, entity_key__in=[f"item:{sku}" for sku in wanted]
                ).only(*EVENT_FIELDS)
                if e.pk not in taken
            ]
            taken.update(e.pk for e in frontier)
            in_chunk.update(e.data["sku"] for e in frontier)
            self.events.extend(frontier)
            pulled = pulled or bool(frontier)
        if pulled:
            self.events.sort(key=lambda e: (e.occurred_at, e.pk))

    def load(self) -> None:
        """Read every record the chunk's events name: one query per model."""
        self._pull_parked_item_versions()
        location_codes: set[str] = set()
        skus: set[str] = set()
        customer_codes: set[str] = set()
        order_numbers: set[str] = set()
        supply_refs: set[str] = set()
        lane_keys: set[tuple[str, str]] = set()
        position_keys: set[tuple[str, str]] = set()
        substitute_items: set[str] = set()
        supply_in_chunk: dict[str, tuple[str, str]] = {}
        order_skus_in_chunk: dict[str, set[str]] = defaultdict(set)
        for event in self.events:
            d, t = event.data, event.type
            if t == EventType.LOCATION_UPSERTED:
                location_codes.add(d["code"])
            elif t == EventType.ITEM_UPSERTED:
                skus.add(d["sku"])
                if d.get("substitutes") is not None:
                    substitute_items.add(d["sku"])
                    skus.update(s["sku"] for s in d["substitutes"])
            elif t == EventType.CUSTOMER_UPSERTED:
                customer_codes.add(d["code"])
                if d.get("home_location"):
                    location_codes.add(d["home_location"])
            elif t == EventType.LANE_UPSERTED:
                location_codes.add(d["location"])
                lane_keys.add((d["location"], d["region"]))
            elif t in (EventType.INVENTORY_SNAPSHOT, EventType.INVENTORY_ADJUSTED):
                location_codes.add(d["location"])
                skus.add(d["sku"])
                position_keys.add((d["location"], d["sku"]))
            elif t == EventType.SUPPLY_UPSERTED:
                supply_refs.add(d["ref"])
                skus.add(d["sku"])
                location_codes.add(d["location"])
                supply_in_chunk[d["ref"]] = (d["location"], d["sku"])
            elif t == EventType.SUPPLY_RECEIVED:
                supply_refs.add(d["ref"])
            elif t == EventType.ORDER_UPSERTED:
                order_numbers.add(d["number"])
                customer_codes.add(d["customer"])
                for line in d["lines"]:
                    skus.add(line["sku"])
                    order_skus_in_chunk[d["number"]].add(line["sku"])
                    if line.get("ship_from"):
                        location_codes.add(line["ship_from"])
            elif t == EventType.ORDER_CANCELLED:
                order_numbers.add(d["number"])
            elif t == EventType.CREDIT_HOLD_CHANGED:
                if d.get("customer"):
                    customer_codes.add(d["customer"])
                else:
                    order_numbers.add(d["order"])
            elif t == EventType.SHIPMENT_CONFIRMED:
                order_numbers.add(d["order"])
                location_codes.add(d["location"])

        if location_codes:
            self.locations = {o.code: o for o in Location.objects.filter(code__in=location_codes)}
        if supply_refs:
            for supply in Supply.objects.filter(ref__in=supply_refs).select_related("item", "location"):
                self.supplies[supply.ref] = supply
                position_keys.add((supply.location.code, supply.item.sku))
        for event in self.events:
            if event.type == EventType.SUPPLY_RECEIVED and event.data["ref"] in supply_in_chunk:
                position_keys.add(supply_in_chunk[event.data["ref"]])
        if order_numbers:
            orders = list(Order.objects.filter(number__in=order_numbers))
            self.orders = {o.number: o for o in orders}
            by_pk = {o.pk: o for o in orders}
            shipment_lines: list[int] = []
            shipped_orders = {e.data["order"] for e in self.events if e.type == EventType.SHIPMENT_CONFIRMED}
            for line in OrderLine.objects.filter(order__in=orders).select_related("item"):
                number = by_pk[line.order_id].number
                line.order = by_pk[line.order_id]
                self.lines[number][line.line] = line
                if number in shipped_orders:
                    shipment_lines.append(line.pk)
            if shipment_lines:
                for allocation in Allocation.objects.filter(line_id__in=shipment_lines).select_related("item", "location"):
                    self.allocations[allocation.line_id].append(allocation)
            for event in self.events:
                if event.type != EventType.SHIPMENT_CONFIRMED:
                    continue
                location, number = event.data["location"], event.data["order"]
                for line in self.lines.get(number, {}).values():
                    position_keys.add((location, line.item.sku))
                    for allocation in self.allocations.get(line.pk, []):
                        position_keys.add((allocation.location.code, allocation.item.sku))
                for sku in order_skus_in_chunk.get(number, ()):
                    position_keys.add((location, sku))
            skus.update(sku for lines in order_skus_in_chunk.values() for sku in lines)
        if skus:
            self.items = {o.sku: o for o in Item.objects.filter(sku__in=skus)}
        if customer_codes:
            self.customers = {o.code: o for o in Customer.objects.filter(code__in=customer_codes)}
        if lane_keys:
            regions = {region for _, region in lane_keys}
            for lane in Lane.objects.filter(location__code__in={loc for loc, _ in lane_keys}, region__in=regions).select_related("location"):
                self.lanes[(lane.location.code, lane.region)] = lane
        if substitute_items:
            for link in ItemSubstitute.objects.filter(item__sku__in=substitute_items).select_related("item", "substitute"):
                self.substitutes.setdefault(link.item.sku, {})[link.substitute.sku] = link
        if position_keys:
            self._load_positions(position_keys)

    def _load_positions(self, keys: set[tuple[str, str]]) -> None:
        keys = keys - self.position_keys_checked
        if not keys:
            return
        self.position_keys_checked |= keys
        query = Q(location__code__in={k[0] for k in keys}, item__sku__in={k[1] for k in keys})
        for position in InventoryPosition.objects.filter(query).select_related("location", "item"):
            key = (position.location.code, position.item.sku)
            if key in keys and key not in self.positions:
                self.positions[key] = position

    def position(self, location: str, sku: str) -> InventoryPosition | None:
        key = (location, sku)
        if key not in self.positions and key not in self.position_keys_checked:
            self._load_positions({key})  # a position not foreseen by load(): read it once
        return self.positions.get(key)

    # ------------------------------------------------------------------ applying
    def _find_creatable_skus(self) -> None:
        """The skus this chunk's item events will create: the largest set in which every sku
        has a version whose substitutes are all stored or in the set (so cycles qualify)."""
        versions: dict[str, list[set[str]]] = defaultdict(list)
        for event in self.events:
            if event.type == EventType.ITEM_UPSERTED and event.data["sku"] not in self.items:
                versions[event.data["sku"]].append({s["sku"] for s in event.data.get("substitutes") or []})
        creatable = set(versions)
        changed = True
        while changed:
            known = creatable | set(self.items)
            dropped = {sku for sku in creatable if not any(subs <= known for subs in versions[sku])}
            creatable -= dropped
            changed = bool(dropped)
        self.creatable_skus = creatable

    def apply_all(self) -> None:
        """Apply every event in order; events waiting for a later event's record retry after it."""
        self._find_creatable_skus()
        waiting = list(self.events)
        while waiting:
            deferred = []
            progressed = False
            for event in waiting:
                missing = self.missing_references(event)
                if missing:
                    deferred.append(event)
                    continue
                progressed = True
                try:
                    status = self.apply(event)
                except EventApplyError as error:
                    self.outcomes[event.pk] = Outcome(EventStatus.FAILED, errors=error.errors)
                else:
                    self.outcomes[event.pk] = Outcome(status)
            if not progressed:
                for event in deferred:
                    self.outcomes[event.pk] = Outcome(EventStatus.PARKED, references=self.missing_references(event))
                break
            waiting = deferred
        for link, sku in self.unresolved_links:
            link.substitute = self.items[sku]  # created by a later event of this chunk (see _find_creatable_skus)

    def missing_references(self, event: Any) -> list[str]:
        """The ``kind:code`` references of ``event`` not known yet (stored or created in this chunk)."""
        d, t = event.data, event.type
        refs: list[str] = []

        def need(kind: str, code: str | None, known: dict) -> None:
            if code and code not in known:
                ref = f"{kind}:{code}"
                if ref not in refs:
                    refs.append(ref)

        if t == EventType.ITEM_UPSERTED:
            for sub in d.get("substitutes") or []:
                if sub["sku"] not in self.creatable_skus:
                    need("item", sub["sku"], self.items)
        elif t == EventType.CUSTOMER_UPSERTED:
            need("location", d.get("home_location"), self.locations)
        elif t == EventType.LANE_UPSERTED:
            need("location", d["location"], self.locations)
        elif t in (EventType.INVENTORY_SNAPSHOT, EventType.INVENTORY_ADJUSTED, EventType.SUPPLY_UPSERTED):
            need("location", d["location"], self.locations)
            need("item", d["sku"], self.items)
        elif t == EventType.SUPPLY_RECEIVED:
            need("supply", d["ref"], self.supplies)
        elif t == EventType.ORDER_UPSERTED:
            need("customer", d["customer"], self.customers)
            for line in d["lines"]:
                need("item", line["sku"], self.items)
                need("location", line.get("ship_from"), self.locations)
        elif t == EventType.ORDER_CANCELLED:
            need("order", d["number"], self.orders)
        elif t == EventType.CREDIT_HOLD_CHANGED:
            if d.get("customer"):
                need("customer", d["customer"], self.customers)
            else:
                need("order", d["order"], self.orders)
        elif t == EventType.SHIPMENT_CONFIRMED:
            need("order", d["order"], self.orders)
            need("location", d["location"], self.locations)
        return refs

    def apply(self, event: Any) -> str:
        handler = getattr(self, "_apply_" + event.type.replace(".", "_"))
        return handler(event, event.data)

    def _mark(self, obj: Model, event: Any) -> None:
        obj._change_reason = f"event {self.source_codes[event.source_id]}:{event.event_id}"[:100]  # type: ignore[attr-defined]
        obj._history_user = self.actors.get(event.batch_id) if event.batch_id else None  # type: ignore[attr-defined]
        if obj.pk is not None:
            self.dirty[type(obj)][id(obj)] = obj

    def _create(self, obj: Model, event: Any, key: str | None = None) -> None:
        self.new[type(obj)].append(obj)
        if key:
            self.created_keys.add(key)
        self._mark(obj, event)

    @staticmethod
    def _is_stale(obj: Any, event: Any) -> bool:
        return obj.source_updated_at is not None and event.occurred_at < obj.source_updated_at

    def _apply_location_upserted(self, event: Any, d: dict) -> str:
        location = self.locations.get(d["code"])
        if location is not None and self._is_stale(location, event):
            return EventStatus.STALE
        if location is None:
            location = Location(code=d["code"])
            self.locations[d["code"]] = location
            self._create(location, event, f"location:{d['code']}")
        location.name, location.region, location.kind = d["name"], d["region"], d["kind"]
        if "release_capacity_per_day" in d:
            location.release_capacity_per_day = d["release_capacity_per_day"]
        if "cutoff_time" in d:
            location.cutoff_time = dt.time.fromisoformat(d["cutoff_time"]) if d["cutoff_time"] else None
        if "timezone" in d:
            location.timezone = d["timezone"] or ""
        location.source_updated_at = event.occurred_at
        self._mark(location, event)
        return EventStatus.APPLIED

    def _apply_item_upserted(self, event: Any, d: dict) -> str:
        sku = d["sku"]
        item = self.items.get(sku)
        if item is not None and self._is_stale(item, event):
            return EventStatus.STALE
        if item is None:
            item = Item(sku=sku)
            self.items[sku] = item
            self._create(item, event, f"item:{sku}")
        item.description, item.item_class, item.uom = d["description"], d["item_class"], d["uom"]
        item.unit_cost = to_decimal(d["unit_cost"])
        if "pack_size" in d:  # absent keeps the stored size; null is the default, 1
            item.pack_size = to_decimal(d["pack_size"]) if d["pack_size"] is not None else Decimal(1)
        item.source_updated_at = event.occurred_at
        self._mark(item, event)
        if d.get("substitutes") is not None:
            current = self.substitutes.setdefault(sku, {})
            wanted = {s["sku"]: s["priority"] for s in d["substitutes"]}
            for sub_sku in list(current):
                if sub_sku not in wanted:
                    link = current.pop(sub_sku)
                    if link.pk is not None:
                        self.deleted_substitutes.append(link)
                        self.dirty[ItemSubstitute].pop(id(link), None)
                    else:
                        self.new[ItemSubstitute] = [o for o in self.new[ItemSubstitute] if o is not link]
            for sub_sku, priority in wanted.items():
                link = current.get(sub_sku)
                if link is None:
                    if sub_sku in self.items:
                        link = ItemSubstitute(item=item, substitute=self.items[sub_sku], priority=priority)
                    else:
                        link = ItemSubstitute(item=item, priority=priority)
                        self.unresolved_links.append((link, sub_sku))
                    current[sub_sku] = link
                    self._create(link, event)
                elif link.priority != priority:
                    link.priority = priority
                    self._mark(link, event)
        self.skus.add(sku)
        return EventStatus.APPLIED

    def _apply_customer_upserted(self, event: Any, d: dict) -> str:
        customer = self.customers.get(d["code"])
        if customer is not None and self._is_stale(customer, event):
            return EventStatus.STALE
        if customer is None:
            customer = Customer(code=d["code"])
            self.customers[d["code"]] = customer
            self._create(customer, event, f"customer:{d['code']}")
        else:
            self.customers_touched.add(d["code"])
        customer.name, customer.tier, customer.segment, customer.region = d["name"], d["tier"], d["segment"], d["region"]
        if "home_location" in d:
            customer.home_location = self.locations[d["home_location"]] if d["home_location"] else None
        if "sla_days" in d:
            customer.sla_days = d["sla_days"]
        if d.get("late_penalty_per_day") is not None:
            customer.late_penalty_per_day = to_decimal(d["late_penalty_per_day"])
        if d.get("credit_hold") is not None:
            customer.credit_hold = d["credit_hold"]
        customer.source_updated_at = event.occurred_at
        self._mark(customer, event)
        return EventStatus.APPLIED

    def _apply_lane_upserted(self, event: Any, d: dict) -> str:
        key = (d["location"], d["region"])
        lane = self.lanes.get(key)
        if lane is not None and self._is_stale(lane, event):
            return EventStatus.STALE
        if lane is None:
            lane = Lane(location=self.locations[d["location"]], region=d["region"])
            self.lanes[key] = lane
            self._create(lane, event)
        lane.transit_days = d["transit_days"]
        lane.cost_per_unit = to_decimal(d["cost_per_unit"])
        lane.source_updated_at = event.occurred_at
        self._mark(lane, event)
        return EventStatus.APPLIED

    def _new_position(self, location: str, sku: str, as_of: dt.datetime, event: Any) -> InventoryPosition:
        position = InventoryPosition(location=self.locations[location], item=self.items[sku], as_of=as_of)
        self.positions[(location, sku)] = position
        self._create(position, event)
        return position

    def _apply_inventory_snapshot(self, event: Any, d: dict) -> str:
        as_of = parse_timestamp(d["as_of"])
        position = self.position(d["location"], d["sku"])
        if position is not None and as_of < position.as_of:
            return EventStatus.STALE
        if position is None:
            position = self._new_position(d["location"], d["sku"], as_of, event)
        position.on_hand = to_decimal(d["on_hand"])
        position.quality_hold = to_decimal(d.get("quality_hold") or 0)
        position.warehouse_hold = to_decimal(d.get("warehouse_hold") or 0)
        position.as_of = as_of
        position.source = self.source_codes[event.source_id]
        self._mark(position, event)
        self.skus.add(d["sku"])
        key = (d["location"], d["sku"])
        self.negative_stock = [n for n in self.negative_stock if (n.location, n.sku) != key]
        self.superseded_positions.add(key)
        return EventStatus.APPLIED

    def _apply_inventory_adjusted(self, event: Any, d: dict) -> str:
        as_of = parse_timestamp(d["as_of"])
        delta = to_decimal(d["delta"])
        position = self.position(d["location"], d["sku"])
        if position is not None and as_of < position.as_of:
            return EventStatus.STALE
        on_hand = position.on_hand if position is not None else ZERO
        adjusted = _bounded(on_hand + delta, "data.delta", f"on-hand of {d['sku']} at {d['location']}")
        if adjusted < 0:
            # The warehouse says the stock is gone: it is, and the shortfall is reported.
            self.negative_stock.append(NegativeStock(event, d["location"], d["sku"], on_hand, delta))
            adjusted = ZERO
        if position is None:
            position = self._new_position(d["location"], d["sku"], as_of, event)
            position.source = self.source_codes[event.source_id]
        position.on_hand = adjusted
        position.as_of = max(position.as_of, as_of)
        self._mark(position, event)
        self.skus.add(d["sku"])
        return EventStatus.APPLIED

    def _apply_supply_upserted(self, event: Any, d: dict) -> str:
        supply = self.supplies.get(d["ref"])
        if supply is not None and self._is_stale(supply, event):
            return EventStatus.STALE
        if supply is None:
            supply = Supply(ref=d["ref"])
            self.supplies[d["ref"]] = supply
            self._create(supply, event, f"supply:{d['ref']}")
        else:
            self.skus.add(supply.item.sku)
        supply.kind = d["kind"]
        supply.item = self.items[d["sku"]]
        supply.location = self.locations[d["location"]]
        supply.quantity = to_decimal(d["quantity"])
        supply.eta = parse_date(d["eta"])
        if "supplier" in d:
            supply.supplier = d["supplier"] or ""
        if d.get("confidence") is not None:
            supply.confidence = to_decimal(d["confidence"])
        status = d.get("status") or SupplyStatus.OPEN
        if not (status == SupplyStatus.OPEN and supply.status == SupplyStatus.RECEIVED):
            supply.status = status
        supply.source_updated_at = event.occurred_at
        self._mark(supply, event)
        self.skus.add(d["sku"])
        return EventStatus.APPLIED

    def _apply_supply_received(self, event: Any, d: dict) -> str:
        supply = self.supplies[d["ref"]]
        quantity = to_decimal(d["quantity"])
        received_at = parse_timestamp(d["received_at"])
        location, sku = supply.location.code, supply.item.sku
        position = self.position(location, sku)
        on_hand = _bounded((position.on_hand if position is not None else ZERO) + quantity, "data.quantity", f"on-hand of {sku} at {location}")
        received = _bounded(supply.received_quantity + quantity, "data.quantity", f"the received quantity of {d['ref']}")
        if position is None:
            if location not in self.locations:
                self.locations[location] = supply.location
            if sku not in self.items:
                self.items[sku] = supply.item
            position = self._new_position(location, sku, received_at, event)
            position.source = self.source_codes[event.source_id]
        position.on_hand = on_hand
        position.as_of = max(position.as_of, received_at)
        self._mark(position, event)
        supply.received_quantity = received
        if supply.received_quantity >= supply.quantity:
            supply.status = SupplyStatus.RECEIVED
        self._mark(supply, event)
        received_day = timezone.localtime(received_at).date()
        self.receipts.append(
            SupplyReceipt(
                supply=supply,
                quantity=quantity,
                received_at=received_at,
                eta=supply.eta,
                days_late=(received_day - supply.eta).days,
                event_id=event.event_id,
            )
        )
        self.skus.add(sku)
        return EventStatus.APPLIED

    def _apply_order_upserted(self, event: Any, d: dict) -> str:
        number = d["number"]
        order = self.orders.get(number)
        if order is not None and self._is_stale(order, event):
            return EventStatus.STALE
        if order is None:
            order = Order(number=number)
            self.orders[number] = order
            self._create(order, event, f"order:{number}")
        order.customer = self.customers[d["customer"]]
        order.channel = d["channel"]
        order.created_at = parse_timestamp(d["created_at"])
        order.requested_date = parse_date(d["requested_date"])
        if "promised_date" in d:
            order.promised_date = parse_date(d["promised_date"]) if d["promised_date"] else None
        order.ship_complete = bool(d.get("ship_complete") or False)
        # kind "order" over a stored quote converts it in place: its lines keep what they hold.
        order.kind = d.get("kind") or OrderKind.ORDER
        order.expires_at = quote_expiry(d.get("expires_at")) if order.kind == OrderKind.QUOTE else None
        order.status = OrderStatus.OPEN
        order.cancel_reason = ""
        order.source_updated_at = event.occurred_at
        self._mark(order, event)
        lines = self.lines[number]
        listed: set[int] = set()
        for entry in d["lines"]:
            listed.add(entry["line"])
            line = lines.get(entry["line"])
            if line is None:
                line = OrderLine(order=order, line=entry["line"])
                lines[entry["line"]] = line
                self._create(line, event)
            else:
                self.skus.add(line.item.sku)
            line.item = self.items[entry["sku"]]
            line.quantity = to_decimal(entry["quantity"])
            line.unit_price = to_decimal(entry["unit_price"])
            line.unit_cost = to_decimal(entry["unit_cost"])
            line.allow_substitute = bool(entry.get("allow_substitute") or False)
            line.ship_from = self.locations[entry["ship_from"]] if entry.get("ship_from") else None
            fully_shipped = line.shipped_quantity > 0 and line.shipped_quantity >= line.quantity
            line.status = LineStatus.SHIPPED if fully_shipped else LineStatus.OPEN
            self._mark(line, event)
            self.skus.add(entry["sku"])
        for line_number, line in lines.items():
            if line_number not in listed and line.status == LineStatus.OPEN:
                line.status = LineStatus.CANCELLED
                self._mark(line, event)
                self.skus.add(line.item.sku)
        return EventStatus.APPLIED

    def _apply_order_cancelled(self, event: Any, d: dict) -> str:
        order = self.orders[d["number"]]
        if self._is_stale(order, event):
            return EventStatus.STALE
        order.status = OrderStatus.CANCELLED
        order.cancel_reason = d["reason"]
        order.source_updated_at = event.occurred_at
        self._mark(order, event)
        for line in self.lines[d["number"]].values():
            if line.status == LineStatus.OPEN:
                line.status = LineStatus.CANCELLED
                self._mark(line, event)
                self.skus.add(line.item.sku)
        return EventStatus.APPLIED

    def _apply_credit_hold_changed(self, event: Any, d: dict) -> str:
        if d.get("customer"):
            target: Any = self.customers[d["customer"]]
            self.customers_touched.add(d["customer"])
        else:
            target = self.orders[d["order"]]
            self.skus.update(line.item.sku for line in self.lines[d["order"]].values() if line.status == LineStatus.OPEN)
        if self._is_stale(target, event):
            return EventStatus.STALE
        target.credit_hold = d["on_hold"]
        target.credit_hold_reason = (d.get("reason") or "") if d["on_hold"] else ""
        target.source_updated_at = event.occurred_at
        self._mark(target, event)
        return EventStatus.APPLIED

    def _apply_shipment_confirmed(self, event: Any, d: dict) -> str:
        number, location = d["order"], d["location"]
        line = self.lines[number].get(d["line"])
        if line is None:
            raise EventApplyError("data.line", f"order {number} has no line {d['line']}")
        if line.status == LineStatus.CANCELLED:
            raise EventApplyError("data.line", f"line {d['line']} of order {number} is cancelled")
        quantity = to_decimal(d["quantity"])
        remaining = quantity
        consumed: list[tuple[Allocation, Decimal]] = []
        per_item: dict[str, Decimal] = defaultdict(Decimal)
        live = [a for a in self.allocations.get(line.pk, []) if a.pk not in self.deleted_allocations and a.location.code == location]
        for allocation in sorted(live, key=lambda a: (CONSUME_ORDER.get(a.state, 9), a.pk)):
            if remaining <= 0:
                break
            take = min(remaining, allocation.quantity)
            consumed.append((allocation, take))
            per_item[allocation.item.sku] += take
            remaining -= take
        if remaining > 0:
            per_item[line.item.sku] += remaining
        positions: list[tuple[InventoryPosition, Decimal]] = []
        for sku, take in per_item.items():
            position = self.position(location, sku)
            on_hand = position.on_hand if position is not None else ZERO
            if position is None or on_hand < take:
                raise EventApplyError(
                    "data.quantity", f"shipping {take} of {sku} would take on-hand at {location} below zero (on hand {on_hand})"
                )
            positions.append((position, take))
        for position, take in positions:
            position.on_hand -= take
            self._mark(position, event)
            self.skus.add(position.item.sku)
        for allocation, take in consumed:
            allocation.quantity -= take
            if allocation.quantity <= 0:
                self.deleted_allocations[allocation.pk] = allocation
                self.dirty_allocations.pop(allocation.pk, None)
            else:
                allocation.updated_at = timezone.now()
                self.dirty_allocations[allocation.pk] = allocation
        line.shipped_quantity += quantity
        if line.shipped_quantity >= line.quantity:
            line.status = LineStatus.SHIPPED
        self._mark(line, event)
        self.skus.add(line.item.sku)
        return EventStatus.APPLIED

    # ------------------------------------------------------------------ writing
    def write(self) -> None:
        """Write every created and changed record: one bulk statement (plus history) per model."""
        if self.deleted_substitutes:
            ItemSubstitute.objects.filter(pk__in=[o.pk for o in self.deleted_substitutes]).delete()
        for model in WRITE_ORDER:
            bulk.create(model, self.new.get(model, []))
            bulk.update(model, list(self.dirty.get(model, {}).values()), _fields(model))
        bulk.create(SupplyReceipt, self.receipts, history=False)
        if self.deleted_allocations:
            Allocation.objects.filter(pk__in=list(self.deleted_allocations)).delete()
        if self.dirty_allocations:
            Allocation.objects.bulk_update(list(self.dirty_allocations.values()), ["quantity", "updated_at"], batch_size=UPDATE_BATCH)
        if self.customers_touched:
            customer_ids = [self.customers[code].pk for code in self.customers_touched]
            item_ids = set(OrderLine.objects.filter(order__customer_id__in=customer_ids, status=LineStatus.OPEN).values_list("item_id", flat=True).distinct())
            known = {item.pk: sku for sku, item in self.items.items()}
            self.skus.update(known[i] for i in item_ids if i in known)
            unknown = [i for i in item_ids if i not in known]
            if unknown:
                self.skus.update(Item.objects.filter(pk__in=unknown).values_list("sku", flat=True))
