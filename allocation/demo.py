"""Demo data: a realistic, deterministic distributor expressed as canonical events (events-v1.md).

``generate_events`` yields the envelope dicts a real ERP/WMS would push, in an order the
ingestion accepts (master data before what references it). The same seed always gives the
same events, so demos, training and tests are reproducible. Nothing here touches the
database: ``manage.py demo`` feeds these events through the one ingestion service.

The shape of the business: six warehouses in three regions plus an import hub, lanes from
every location to every region, about 2,000 items in 25 classes (some with substitutes),
customers across tiers and segments, open orders whose demand leaves roughly 30% of the
items short, quality holds, inbound purchase orders and ASNs of varying confidence, and a
receipt history (ETA versus actual) for supplier reliability.
"""
from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

REGIONS = ("east", "central", "west")
# Distance in "region steps": how many regions apart two regions are.
REGION_INDEX = {region: index for index, region in enumerate(REGIONS)}
SHORT_ITEM_SHARE = 0.30
SUBSTITUTE_ITEM_SHARE = 0.15
CHANNELS = ("b2b_contract", "field_sales", "ecommerce", "edi")
SEGMENTS = ("healthcare", "manufacturing", "municipal", "construction", "retail")
SEGMENT_WEIGHTS = (18, 30, 14, 23, 15)
SEGMENT_CODE = {"healthcare": "HC", "manufacturing": "MFG", "municipal": "MUN", "construction": "CON", "retail": "RET"}
# Which channels each segment orders through (weights follow CHANNELS).
SEGMENT_CHANNELS = {
    "healthcare": (55, 10, 5, 30),
    "manufacturing": (35, 30, 5, 30),
    "municipal": (70, 20, 0, 10),
    "construction": (15, 55, 20, 10),
    "retail": (5, 10, 75, 10),
}
# The sources the demo feeds come from (a server database registers sources explicitly).
DEMO_SOURCES = ("edi", "erp", "shop", "wms")
TIERS = (1, 2, 3, 4)
TIER_WEIGHTS = (10, 25, 35, 30)
SLA_DAYS = {1: 1, 2: 2, 3: 3, 4: 5}
PENALTY_RANGE = {1: (200, 1000), 2: (50, 300), 3: (0, 100), 4: (0, 0)}
# Lines per order 1..8, weighted towards small orders (mean about 3).
LINES_PER_ORDER_WEIGHTS = (30, 20, 14, 11, 9, 7, 5, 4)

# (class, SKU prefix, uom, unit cost range, order quantity range, description nouns)
ITEM_CLASSES: tuple[tuple[str, str, str, tuple[int, int], tuple[int, int], tuple[str, ...]], ...] = (
    ("valves", "VLV", "EA", (12, 480), (1, 40), ("Ball valve", "Gate valve", "Check valve", "Butterfly valve")),
    ("pumps", "PMP", "EA", (150, 2400), (1, 6), ("Centrifugal pump", "Sump pump", "Booster pump", "Diaphragm pump")),
    ("fittings", "FIT", "EA", (1, 35), (10, 400), ("Elbow", "Tee", "Coupling", "Union", "Reducer")),
    ("gloves", "GLV", "CS", (18, 95), (1, 60), ("Nitrile gloves", "Latex gloves", "Cut-resistant gloves", "Vinyl gloves")),
    ("pipe", "PIP", "FT", (2, 40), (20, 600), ("Copper pipe", "PVC pipe", "Steel pipe", "PEX tubing")),
    ("fasteners", "FST", "BX", (4, 60), (2, 120), ("Hex bolts", "Lag screws", "Anchors", "Washers")),
    ("filters", "FLT", "EA", (6, 140), (2, 80), ("Air filter", "Water filter cartridge", "Oil filter", "HEPA filter")),
    ("sealants", "SEA", "EA", (4, 45), (2, 100), ("Thread sealant", "Silicone sealant", "Pipe dope", "Epoxy")),
    ("hoses", "HOS", "EA", (15, 260), (1, 30), ("Hydraulic hose", "Suction hose", "Garden hose", "Air hose")),
    ("motors", "MTR", "EA", (120, 3200), (1, 4), ("AC motor", "DC motor", "Gear motor", "Stepper motor")),
    ("bearings", "BRG", "EA", (5, 220), (2, 60), ("Ball bearing", "Roller bearing", "Pillow block", "Thrust bearing")),
    ("belts", "BLT", "EA", (6, 90), (2, 40), ("V-belt", "Timing belt", "Flat belt", "Conveyor belt")),
    ("electrical", "ELC", "EA", (2, 180), (5, 200), ("Breaker", "Contactor", "Junction box", "Conduit fitting")),
    ("lighting", "LGT", "EA", (8, 240), (2, 80), ("LED panel", "High bay fixture", "Exit sign", "Work light")),
    ("safety", "SAF", "EA", (3, 160), (2, 100), ("Safety glasses", "Hard hat", "Respirator", "Hi-vis vest")),
    ("janitorial", "JAN", "CS", (10, 85), (1, 80), ("Paper towels", "Disinfectant", "Trash liners", "Floor cleaner")),
    ("medical", "MED", "BX", (8, 320), (1, 50), ("Exam gloves", "Syringes", "Gauze pads", "Face masks")),
    ("tools", "TOL", "EA", (9, 450), (1, 20), ("Pipe wrench", "Drill", "Crimping tool", "Torque wrench")),
    ("adhesives", "ADH", "EA", (3, 70), (2, 100), ("Construction adhesive", "Cyanoacrylate", "Contact cement", "Tape")),
    ("hvac", "HVC", "EA", (20, 900), (1, 12), ("Thermostat", "Damper", "Blower", "Coil")),
    ("plumbing", "PLB", "EA", (6, 260), (1, 40), ("Faucet", "Drain", "Trap", "Flush valve")),
    ("instrumentation", "INS", "EA", (25, 1400), (1, 10), ("Pressure gauge", "Flow meter", "Thermocouple", "Level sensor")),
    ("packaging", "PKG", "CS", (12, 75), (2, 150), ("Stretch wrap", "Boxes", "Bubble wrap", "Strapping")),
    ("lubricants", "LUB", "EA", (5, 120), (2, 60), ("Grease cartridge", "Gear oil", "Spray lubricant", "Hydraulic fluid")),
    ("cable", "CBL", "FT", (1, 12), (50, 1000), ("Copper wire", "Ethernet cable", "Control cable", "Wire rope")),
)
SIZES = ("1/4in", "3/8in", "1/2in", "3/4in", "1in", "1-1/4in", "2in", "3in", "4in", "small", "medium", "large")
MATERIALS = ("brass", "stainless", "PVC", "carbon steel", "bronze", "nylon", "aluminium", "polymer")
SUPPLIERS = (
    ("ACME-IND", 0.5), ("NORTHSTAR", 1.5), ("PACIFIC-IMPORT", 4.0), ("GULF-SUPPLY", 2.0),
    ("MIDWEST-MFG", 0.8), ("SUMMIT-PARTS", 3.0), ("HARBOR-TRADING", 5.0), ("LAKESIDE", 1.0),
    ("KEYSTONE", 0.3), ("REDWOOD", 2.5), ("PIONEER", 1.2), ("ATLAS-GLOBAL", 6.0),
)
CITY_NAMES = (
    "Springfield", "Riverside", "Fairview", "Franklin", "Greenville", "Bristol", "Clinton",
    "Madison", "Georgetown", "Salem", "Ashland", "Oxford", "Jackson", "Milton", "Dayton",
    "Lexington", "Auburn", "Burlington", "Clayton", "Dover", "Hudson", "Kingston", "Lebanon",
    "Marion", "Newport", "Oakland", "Princeton", "Quincy", "Richmond", "Shelby", "Trenton",
)
SEGMENT_NAMES = {
    "healthcare": ("Memorial Hospital", "Medical Center", "Health System", "Surgical Clinic", "Care Home"),
    "manufacturing": ("Fabrication", "Machine Works", "Industries", "Plastics", "Foundry"),
    "municipal": ("Water Works", "Public Works", "Utilities District", "School District", "Parks Department"),
    "construction": ("Builders", "Contracting", "Mechanical", "Plumbing & Heating", "Site Services"),
    "retail": ("Hardware", "Home Store", "Supply Co", "Web Shop", "Trade Counter"),
}


@dataclass(frozen=True)
class DemoLocation:
    code: str
    name: str
    region: str
    kind: str
    capacity: int


@dataclass
class DemoItem:
    sku: str
    description: str
    item_class: str
    uom: str
    unit_cost: Decimal
    quantity_range: tuple[int, int]
    substitutes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DemoCustomer:
    code: str
    name: str
    tier: int
    segment: str
    region: str
    home_location: str
    penalty: int


LOCATIONS = (
    DemoLocation("DC-EAST-1", "Newark distribution center", "east", "warehouse", 1800),
    DemoLocation("DC-EAST-2", "Atlanta distribution center", "east", "warehouse", 1200),
    DemoLocation("DC-CENTRAL-1", "Chicago distribution center", "central", "warehouse", 2000),
    DemoLocation("DC-CENTRAL-2", "Dallas distribution center", "central", "warehouse", 1400),
    DemoLocation("DC-WEST-1", "Reno distribution center", "west", "warehouse", 1600),
    DemoLocation("DC-WEST-2", "Portland distribution center", "west", "warehouse", 1000),
    DemoLocation("HUB-IMPORT", "Long Beach import hub", "west", "hub", 600),
)
TIMEZONES = {"east": "America/New_York", "central": "America/Chicago", "west": "America/Los_Angeles"}
# Release waves run before each location's cutoff in its own zone (allocation.releases).
CUTOFFS = {"east": "17:00", "central": "16:00", "west": "15:00"}


def release_capacity(location: DemoLocation, lines: int) -> int:
    """Lines a day the location releases: its size scaled to the book, so that some lines of a
    20,000-line book wait for the next day at the busiest locations (the Release screen shows it)."""
    return max(10, round(location.capacity * lines / 20000 * 0.25))


def _money(value: float | Decimal, places: str = "0.01") -> str:
    return str(Decimal(str(value)).quantize(Decimal(places), rounding=ROUND_HALF_UP))


def _stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Envelopes:
    """Numbers events per source so each id is unique per source, like a real feed."""

    def __init__(self) -> None:
        self.counters: dict[str, int] = defaultdict(int)

    def make(self, type_: str, source: str, occurred_at: dt.datetime, data: dict) -> dict:
        self.counters[source] += 1
        return {
            "id": f"{source}-{self.counters[source]:07d}",
            "type": type_,
            "source": source,
            "occurred_at": _stamp(occurred_at),
            "data": data,
        }


def _scale(lines: int) -> tuple[int, int]:
    """How many items and customers a demo of ``lines`` order lines has."""
    items = 2000 if lines >= 5000 else max(30, round(2000 * lines / 5000))
    customers = max(12, round(lines * 0.03))
    return items, customers


def _transit(location: DemoLocation, region: str) -> tuple[int, Decimal]:
    distance = abs(REGION_INDEX[location.region] - REGION_INDEX[region])
    # The second DC of a region is a little slower and dearer; the hub is far from everyone.
    slower = 1 if location.code.endswith("-2") else 0
    hub = 2 if location.kind == "hub" else 0
    days = 1 + 2 * distance + slower + hub
    cost = Decimal("0.40") + Decimal("0.45") * distance + Decimal("0.10") * slower + Decimal("0.30") * (hub // 2)
    return days, cost


def _items(rng: random.Random, count: int) -> list[DemoItem]:
    items: list[DemoItem] = []
    for index in range(count):
        class_name, prefix, uom, (cost_low, cost_high), quantity_range, nouns = ITEM_CLASSES[index % len(ITEM_CLASSES)]
        number = index // len(ITEM_CLASSES) + 1
        description = f"{rng.choice(nouns)} {rng.choice(SIZES)} {rng.choice(MATERIALS)}"
        cost = Decimal(str(round(rng.uniform(cost_low, cost_high), 2)))
        items.append(DemoItem(f"{prefix}-{number:04d}", description, class_name, uom, cost, quantity_range))
    by_class: dict[str, list[DemoItem]] = defaultdict(list)
    for item in items:
        by_class[item.item_class].append(item)
    # Substitutes are drawn only from items that have none themselves: no substitution cycles,
    # so each item can be emitted after the items it names.
    with_substitutes = rng.sample(items, k=round(count * SUBSTITUTE_ITEM_SHARE))
    chosen = {item.sku for item in with_substitutes}
    for item in with_substitutes:
        siblings = [other for other in by_class[item.item_class] if other.sku not in chosen]
        if siblings:
            item.substitutes = [other.sku for other in rng.sample(siblings, k=min(len(siblings), rng.choice((1, 1, 2))))]
    return items


def _customers(rng: random.Random, count: int) -> list[DemoCustomer]:
    customers = []
    per_segment: dict[str, int] = defaultdict(int)
    for _ in range(count):
        segment = rng.choices(SEGMENTS, weights=SEGMENT_WEIGHTS)[0]
        tier = rng.choices(TIERS, weights=TIER_WEIGHTS)[0]
        region = rng.choice(REGIONS)
        per_segment[segment] += 1
        home = rng.choice([location.code for location in LOCATIONS if location.region == region and location.kind == "warehouse"])
        low, high = PENALTY_RANGE[tier]
        penalty = rng.randrange(low, high + 1, 10) if high else 0
        name = f"{rng.choice(CITY_NAMES)} {rng.choice(SEGMENT_NAMES[segment])}"
        code = f"{SEGMENT_CODE[segment]}-{per_segment[segment]:04d}"
        customers.append(DemoCustomer(code, name, tier, segment, region, home, penalty))
    return customers


def generate_events(*, seed: int = 7, lines: int = 20000, business_date: dt.date) -> Iterator[dict]:
    """Yield a deterministic demo data set as canonical events, master data first.

    ``lines`` is the number of open order lines; customers and orders scale with it, items
    stay at about 2,000 unless ``lines`` is below 5,000 (then fewer, so tests stay fast).
    The same ``seed`` and ``business_date`` always give the same events.
    """
    if lines < 1:
        raise ValueError("lines must be at least 1")
    rng = random.Random(seed)
    envelopes = _Envelopes()
    midnight = dt.datetime.combine(business_date, dt.time(0, 0), tzinfo=dt.UTC)
    master_at = midnight - dt.timedelta(days=180)
    snapshot_at = midnight - dt.timedelta(hours=2)
    item_count, customer_count = _scale(lines)
    items = _items(rng, item_count)
    customers = _customers(rng, customer_count)

    # 1. Master data: locations, lanes, items (plain ones first, so substitutes already exist), customers.
    for location in LOCATIONS:
        yield envelopes.make("location.upserted", "erp", master_at, {
            "code": location.code, "name": location.name, "region": location.region, "kind": location.kind,
            "release_capacity_per_day": release_capacity(location, lines),
            "cutoff_time": "14:00" if location.kind == "hub" else CUTOFFS[location.region],
            "timezone": TIMEZONES[location.region],
        })
    for location in LOCATIONS:
        for region in REGIONS:
            days, cost = _transit(location, region)
            yield envelopes.make("lane.upserted", "erp", master_at, {
                "location": location.code, "region": region, "transit_days": days, "cost_per_unit": _money(cost),
            })
    for item in sorted(items, key=lambda item: bool(item.substitutes)):
        data: dict = {
            "sku": item.sku, "description": item.description, "item_class": item.item_class,
            "uom": item.uom, "unit_cost": _money(item.unit_cost),
        }
        if item.substitutes:
            data["substitutes"] = [{"sku": sku, "priority": rank} for rank, sku in enumerate(item.substitutes, start=1)]
        yield envelopes.make("item.upserted", "erp", master_at, data)
    for customer in customers:
        data = {
            "code": customer.code, "name": customer.name, "tier": customer.tier, "segment": customer.segment,
            "region": customer.region, "home_location": customer.home_location,
            "sla_days": SLA_DAYS[customer.tier], "late_penalty_per_day": _money(customer.penalty),
        }
        yield envelopes.make("customer.upserted", "erp", master_at, data)
    held = rng.sample(customers, k=max(1, round(len(customers) * 0.01)))
    for customer in held:
        yield envelopes.make("credit.hold_changed", "erp", master_at + dt.timedelta(days=30), {
            "customer": customer.code, "on_hold": True, "reason": "Invoices over 90 days past due",
        })

    # 2. Orders are decided first (in memory) so stock can be sized against their demand.
    popularity = [rng.paretovariate(1.3) for _ in items]
    orders, demand = _orders(rng, customers, items, popularity, lines, business_date)

    # 3. Receipt history: supply that arrived before today, with ETA versus actual.
    past_from = business_date - dt.timedelta(days=90)
    history_count = max(10, item_count // 2)
    received_events = []
    for number in range(1, history_count + 1):
        item = rng.choice(items)
        location = rng.choice(LOCATIONS)
        supplier, mean_delay = rng.choice(SUPPLIERS)
        eta = past_from + dt.timedelta(days=rng.randrange(0, 80))
        delay = max(-3, round(rng.gauss(mean_delay, 1.5 + mean_delay / 2)))
        received_on = min(eta + dt.timedelta(days=delay), business_date - dt.timedelta(days=2))
        quantity = rng.randint(*item.quantity_range) * rng.randint(5, 20)
        ref = f"PO-H{number:06d}"
        ordered_at = dt.datetime.combine(eta - dt.timedelta(days=rng.randint(14, 40)), dt.time(14, 0), tzinfo=dt.UTC)
        yield envelopes.make("supply.upserted", "erp", ordered_at, {
            "ref": ref, "kind": "purchase_order", "sku": item.sku, "location": location.code,
            "quantity": str(quantity), "eta": eta.isoformat(), "supplier": supplier,
            "confidence": 0.8, "status": "open",
        })
        received_at = dt.datetime.combine(received_on, dt.time(rng.randint(7, 17), 30), tzinfo=dt.UTC)
        received_quantity = quantity if rng.random() < 0.85 else max(1, round(quantity * rng.uniform(0.6, 0.95)))
        received_events.append((received_at, ref, received_quantity))
    for received_at, ref, quantity in sorted(received_events):
        yield envelopes.make("supply.received", "wms", received_at, {
            "ref": ref, "quantity": str(quantity), "received_at": _stamp(received_at),
        })

    # 4. Inventory snapshots for every item at every location, sized so ~30% of items are short.
    demanded = [item for item in items if demand[item.sku] > 0]
    short = {item.sku for item in rng.sample(demanded, k=min(len(demanded), round(SHORT_ITEM_SHARE * len(items))))}
    for item in items:
        total = demand[item.sku]
        if item.sku in short:
            available = int(total * rng.uniform(0.2, 0.85))
        else:
            available = int(total * rng.uniform(1.15, 2.5)) + rng.randint(0, item.quantity_range[1])
        weights = [rng.random() if rng.random() < 0.7 else 0.0 for _ in LOCATIONS]
        if not any(weights):
            weights[rng.randrange(len(LOCATIONS))] = 1.0
        scale = sum(weights)
        split = [int(available * weight / scale) for weight in weights]
        split[max(range(len(split)), key=lambda index: weights[index])] += available - sum(split)
        for location, quantity in zip(LOCATIONS, split, strict=True):
            data = {"location": location.code, "sku": item.sku, "on_hand": str(quantity), "as_of": _stamp(snapshot_at)}
            # Quality holds sit on top of available stock on a few positions of items that are not short.
            if quantity and item.sku not in short and rng.random() < 0.05:
                hold = max(1, round(quantity * rng.uniform(0.05, 0.3)))
                data["on_hand"] = str(quantity + hold)
                data["quality_hold"] = str(hold)
            yield envelopes.make("inventory.snapshot", "wms", snapshot_at, data)

    # 5. Open inbound over the next 30 days: purchase orders, ASNs (more certain), transfers from the hub.
    inbound_number = 0
    for item in items:
        if rng.random() >= (0.75 if item.sku in short else 0.25):
            continue
        for _ in range(rng.choice((1, 1, 2, 3))):
            inbound_number += 1
            kind = rng.choices(("purchase_order", "asn", "transfer"), weights=(60, 30, 10))[0]
            supplier, _mean = rng.choice(SUPPLIERS)
            location = rng.choice(LOCATIONS[:-1])
            if kind == "asn":
                confidence, source, ref = rng.uniform(0.85, 1.0), "edi", f"ASN-{inbound_number:06d}"
            elif kind == "transfer":
                confidence, source, ref, supplier = rng.uniform(0.9, 1.0), "erp", f"TR-{inbound_number:06d}", "HUB-IMPORT"
            else:
                confidence, source, ref = rng.uniform(0.4, 0.95), "erp", f"PO-{inbound_number:06d}"
            eta = business_date + dt.timedelta(days=rng.randint(1, 30))
            quantity = max(1, round(max(demand[item.sku], item.quantity_range[1]) * rng.uniform(0.2, 0.8)))
            yield envelopes.make("supply.upserted", source, snapshot_at, {
                "ref": ref, "kind": kind, "sku": item.sku, "location": location.code,
                "quantity": str(quantity), "eta": eta.isoformat(), "supplier": supplier,
                "confidence": round(confidence, 2), "status": "open",
            })

    # 6. The open orders themselves.
    for created_at, data in orders:
        source = "shop" if data["channel"] == "ecommerce" else "erp"
        yield envelopes.make("order.upserted", source, created_at, data)


def _orders(
    rng: random.Random,
    customers: list[DemoCustomer],
    items: list[DemoItem],
    popularity: list[float],
    lines: int,
    business_date: dt.date,
) -> tuple[list[tuple[dt.datetime, dict]], dict[str, int]]:
    """Open orders totalling exactly ``lines`` lines, and the demand they put on each SKU."""
    demand: dict[str, int] = defaultdict(int)
    orders: list[tuple[dt.datetime, dict]] = []
    cumulative: list[float] = []
    running = 0.0
    for weight in popularity:
        running += weight
        cumulative.append(running)
    remaining = lines
    number = 100000
    while remaining:
        number += 1
        customer = rng.choice(customers)
        channel = rng.choices(CHANNELS, weights=SEGMENT_CHANNELS[customer.segment])[0]
        created_on = business_date - dt.timedelta(days=rng.randint(1, 40))
        created_at = dt.datetime.combine(created_on, dt.time(rng.randint(6, 19), rng.randint(0, 59)), tzinfo=dt.UTC)
        earliest = max(business_date - dt.timedelta(days=5), created_on + dt.timedelta(days=1))
        requested = earliest + dt.timedelta(days=rng.randint(0, (business_date + dt.timedelta(days=25) - earliest).days))
        count = min(remaining, rng.choices(range(1, 9), weights=LINES_PER_ORDER_WEIGHTS)[0])
        remaining -= count
        chosen: list[DemoItem] = []
        while len(chosen) < count:
            item = rng.choices(items, cum_weights=cumulative)[0]
            if item not in chosen:
                chosen.append(item)
            elif len(chosen) >= len(items):
                break
        order_lines = []
        for line_number, item in enumerate(chosen, start=1):
            low, high = item.quantity_range
            quantity = rng.randint(low, max(low, high // (2 if channel == "ecommerce" else 1)))
            markup = rng.uniform(0.92, 1.7) if rng.random() < 0.04 else rng.uniform(1.12, 1.6)
            line = {
                "line": line_number, "sku": item.sku, "quantity": str(quantity),
                "unit_price": _money(item.unit_cost * Decimal(str(round(markup, 4)))),
                "unit_cost": _money(item.unit_cost),
            }
            if rng.random() < 0.3:
                line["allow_substitute"] = True
            if rng.random() < 0.03:
                line["ship_from"] = rng.choice(LOCATIONS[:-1]).code
            order_lines.append(line)
            demand[item.sku] += quantity
        data: dict = {
            "number": f"SO-{number}", "customer": customer.code, "channel": channel,
            "created_at": _stamp(created_at), "requested_date": requested.isoformat(),
            "ship_complete": count > 1 and rng.random() < 0.1, "lines": order_lines,
        }
        if rng.random() < 0.4:
            data["promised_date"] = (requested + dt.timedelta(days=rng.randint(0, 3))).isoformat()
        orders.append((created_at, data))
    return orders, demand


def demo_policy_documents(*, protected_sku: str, protected_location: str = "DC-EAST-1") -> tuple[dict, dict]:
    """The demo's active policy document and a draft variant of it, ready to simulate.

    The active one serves healthcare first (``win``, class 1), lets web orders only keep
    what they have (``fill``), protects some stock of one SKU for healthcare and caps web
    orders of valves per week. The draft also lets tier-1 customers keep their stock
    (``gain``) and trusts inbound supply from 0.6 confidence, so a simulation shows changes.
    """
    active = {
        "name": "demo",
        "effective_from": "2026-01-01T00:00:00Z",
        "rules": [
            {"scope": {}, "settings": {"strategy": "redistribute", "priority_class": 5}},
            {"scope": {"customer_segment": "healthcare"}, "settings": {"strategy": "win", "priority_class": 1}},
            {"scope": {"channel": "ecommerce"}, "settings": {"strategy": "fill"}},
        ],
        "protections": [
            {"sku": protected_sku, "location": protected_location, "quantity": 40,
             "for": {"customer_segment": "healthcare"}},
        ],
        "quotas": [
            {"item_class": "valves", "for": {"channel": "ecommerce"}, "period": "week", "quantity": 500},
        ],
    }
    draft = {
        **active,
        "rules": [
            *active["rules"],
            {"scope": {"customer_tier": 1}, "settings": {"strategy": "gain", "priority_class": 2}},
            {"scope": {}, "settings": {"inbound_min_confidence": 0.6}},
        ],
    }
    return active, draft


DEMO_PASSWORD = "allot-demo"
# (username, role or None for the superuser)
DEMO_USERS = (
    ("planner", "planner"),
    ("customer_service", "customer_service"),
    ("policy_admin", "policy_admin"),
    ("approver", "approver"),
    ("approver2", "approver"),
    ("finance", "finance"),
    ("integration", "integration"),
    ("admin", None),
)


@dataclass(frozen=True)
class DemoUser:
    username: str
    password: str
    role: str
    created: bool


def ensure_demo_users() -> tuple[list[DemoUser], str]:
    """Create (or reset) one known user per role plus an ``admin`` superuser; idempotent.

    Every demo user gets the password ``allot-demo`` and exactly its demo role. Returns the
    users and the API token key of the ``integration`` user (created on first call, then kept
    until it expires: ``ALLOT_TOKEN_TTL_DAYS``). A password already the demo one is left as is,
    since changing a password revokes the user's tokens.
    """
    from django.contrib.auth.models import User
    from django.db import transaction
    from rest_framework.authtoken.models import Token

    from config.auth import token_expired

    rows = []
    with transaction.atomic():
        for username, role in DEMO_USERS:
            user, created = User.objects.get_or_create(username=username)
            user.is_staff = user.is_superuser = role is None
            if created or not user.check_password(DEMO_PASSWORD):
                user.set_password(DEMO_PASSWORD)  # a password change revokes the user's tokens
            user.save()
            if role is not None:
                from allocation.audit.roles import set_roles  # recorded in the audit trail

                set_roles(user, {role}, actor=None, reason="demo users")
            rows.append(DemoUser(username, DEMO_PASSWORD, role or "superuser", created))
        token, _ = Token.objects.get_or_create(user=User.objects.get(username="integration"))
        if token_expired(token):
            token.delete()
            token = Token.objects.create(user=token.user)
    return rows, token.key


def register_demo_sources(integration_users=()) -> None:
    """Register the demo's event sources, as an operator would before its feeds start (a
    server database does not create sources on first use), binding ``integration_users``."""
    from integrations.services import register_source

    for code in DEMO_SOURCES:
        register_source(code=code, integration_users=integration_users)


def load_demo_book(*, seed: int, lines: int, business_date: dt.date, batch_size: int = 5000) -> int:
    """Benchmarks' demo book: register the sources, ingest and apply the events batch by batch
    (incremental runs collected, not run), refresh planner statistics on PostgreSQL and activate
    the demo policy. Returns the number of events loaded; the caller runs the allocation."""
    from itertools import islice

    from django.db import connection

    from allocation.models import Item
    from allocation.tasks import incremental_runs_paused
    from integrations.services import ingest, process_pending
    from policies.services import import_document

    register_demo_sources()
    events = generate_events(seed=seed, lines=lines, business_date=business_date)
    count = 0
    with incremental_runs_paused():
        while batch := list(islice(events, batch_size)):
            ingest(batch, via="file")
            process_pending()
            count += len(batch)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # fresh planner statistics after the bulk load
    protected = Item.objects.filter(item_class="valves").order_by("sku").values_list("sku", flat=True).first()
    if protected is not None:
        active, _draft = demo_policy_documents(protected_sku=protected)
        import_document(active, actor=None, activate=True)
    return count
