"""``python manage.py bench_api --lines 100000 [--clients 8] [--json]``: time the read API lists.

Meant for a scratch PostgreSQL database (``migrate`` first). When it holds no orders, it
loads the demo data set through ingestion (as ``bench_allocation`` does: ``allocation.demo``
events in batches of 5,000, ``ANALYZE``, the demo policy active) and runs a full allocation
so the lists carry allocations and exceptions; ``--reuse`` benches what is there already.

Each request goes through the whole Django stack (middleware, token authentication, role
check, throttle, filters, pagination, serializers) with the test client, one per thread and
so one database connection per client. Measured, as p50/p95 per endpoint:

- ``GET /api/v1/orders``: the first page, repeated;
- a cursor walk of the order list to page ``--deep`` (default 500), every page timed, and
  the deep page itself repeated;
- the orders list with filters (status, channel, tier, requested range, has_shortage);
- the API list mix (orders, order filters, inventory, supply, allocations, events,
  exceptions, items, customers, a deep order page) from ``--clients`` concurrent clients.

The floor beside the figures is the bare SQL of one orders page: each statement the first
page runs, under ``EXPLAIN ANALYZE`` on PostgreSQL (the sum of their execution times).
The last line (with ``--json``) is one JSON object with every figure.
"""
from __future__ import annotations

import json
import re
import threading
import time
from collections import defaultdict
from urllib.parse import urlsplit

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, connections
from django.test import Client
from django.test.utils import CaptureQueriesContext

BATCH_SIZE = 5000
ORDER_FILTERS = [
    {"status": "open"},
    {"channel": "field_sales"},
    {"tier": "1"},
    {"requested_from": "2000-01-01", "requested_to": "2100-01-01", "status": "open"},
    {"has_shortage": "true"},
]


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


def _summary(values: list[float]) -> dict:
    ms = [v * 1000 for v in values]
    return {"n": len(ms), "p50_ms": round(_percentile(ms, 0.5), 1), "p95_ms": round(_percentile(ms, 0.95), 1),
            "max_ms": round(max(ms), 1)}


def _relative(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


class Command(BaseCommand):
    help = "Benchmark the read API's list endpoints (p50/p95 per endpoint, concurrent list mix)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--lines", type=int, default=100000, help="Open order lines to generate.")
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--clients", type=int, default=8, help="Concurrent clients of the list mix.")
        parser.add_argument("--rounds", type=int, default=6, help="Passes over the list mix per client.")
        parser.add_argument("--repeat", type=int, default=30, help="Repeats of the single-client timings.")
        parser.add_argument("--deep", type=int, default=500, help="Page of the order list the cursor walk reaches.")
        parser.add_argument("--reuse", action="store_true", help="Bench the data already loaded.")
        parser.add_argument("--load-only", action="store_true", help="Load (and allocate) the data, measure nothing.")
        parser.add_argument("--json", action="store_true", help="End with one JSON line of every figure.")

    def handle(self, *args, **options) -> None:
        from allocation.models import Allocation, Order

        self.stdout.write(f"Database: {connection.vendor} {connection.settings_dict.get('NAME')}")
        if Order.objects.exists():
            if not options["reuse"] and not options["load_only"]:
                raise CommandError("Orders already exist: use an empty database, or --reuse to bench the data there.")
        else:
            self._load(options["lines"], options["seed"])
        if not Allocation.objects.exists():
            self._allocate()
        if options["load_only"]:
            return
        results = self._measure(options)
        if options["json"]:
            self.stdout.write(json.dumps(results, sort_keys=True))

    # --- data -----------------------------------------------------------------------------

    def _load(self, lines: int, seed: int) -> None:
        from allocation.dates import business_today
        from allocation.demo import load_demo_book

        started = time.perf_counter()
        count = load_demo_book(seed=seed, lines=lines, business_date=business_today(), batch_size=BATCH_SIZE)
        self.stdout.write(f"Loaded {count} events in {time.perf_counter() - started:.1f}s.")

    def _allocate(self) -> None:
        from allocation.models import RunStatus
        from allocation.services import run_full

        started = time.perf_counter()
        run = run_full(trigger="manual")
        if run.status != RunStatus.SUCCEEDED:
            raise CommandError(f"the full run failed: {run.error}")
        self.stdout.write(
            f"Full run: {run.line_count} lines, {run.allocation_count} allocations in {time.perf_counter() - started:.1f}s."
        )
        self._analyze()

    def _analyze(self) -> None:
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")

    def _tokens(self, count: int) -> list[str]:
        """One reader (planner) per client, each with a token (the throttle counts per user)."""
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import Group
        from rest_framework.authtoken.models import Token

        from config import roles

        planners, _ = Group.objects.get_or_create(name=roles.PLANNER)
        tokens = []
        for index in range(count):
            user, _ = get_user_model().objects.get_or_create(username=f"bench-api-{index}")
            user.groups.add(planners)
            tokens.append(Token.objects.get_or_create(user=user)[0].key)
        return tokens

    # --- measuring ------------------------------------------------------------------------

    def _client(self, token: str) -> Client:
        return Client(HTTP_AUTHORIZATION=f"Token {token}", HTTP_HOST="127.0.0.1")

    def _get(self, client: Client, url: str) -> tuple[float, dict]:
        started = time.perf_counter()
        response = client.get(url, secure=True)  # HTTPS, as production requires
        elapsed = time.perf_counter() - started
        if response.status_code != 200:
            raise CommandError(f"GET {url} answered {response.status_code}: {response.content[:300]!r}")
        return elapsed, response.json()

    def _timed(self, client: Client, url: str, repeat: int) -> list[float]:
        self._get(client, url)  # warm
        return [self._get(client, url)[0] for _ in range(repeat)]

    def _measure(self, options: dict) -> dict:
        from allocation.models import Allocation, Order, OrderLine

        repeat, deep = options["repeat"], options["deep"]
        tokens = self._tokens(max(options["clients"], 1))
        client = self._client(tokens[0])
        figures: dict = {
            "database": connection.vendor,
            "orders": Order.objects.count(),
            "lines": OrderLine.objects.count(),
            "allocations": Allocation.objects.count(),
        }
        self.stdout.write(f"{figures['orders']} orders, {figures['lines']} lines, {figures['allocations']} allocations")
        endpoints: dict[str, dict] = {}

        def report(name: str, values: list[float]) -> None:
            endpoints[name] = _summary(values)
            s = endpoints[name]
            self.stdout.write(f"  {name:<44} p50 {s['p50_ms']:>8.1f} ms  p95 {s['p95_ms']:>8.1f} ms  (n={s['n']})")

        self.stdout.write("Single client:")
        report("orders first page", self._timed(client, "/api/v1/orders", repeat))

        walk, url, page = [], "/api/v1/orders", 0
        deep_url = None
        while url and page < deep:
            elapsed, body = self._get(client, url)
            walk.append(elapsed)
            page += 1
            deep_url = url
            url = _relative(body["next"])
        figures["deep_page"] = page
        report(f"orders cursor walk (pages 1..{page})", walk)
        report(f"orders page {page} (repeated)", self._timed(client, deep_url, repeat))
        for params in ORDER_FILTERS:
            query = "&".join(f"{k}={v}" for k, v in params.items())
            report(f"orders ?{query}", self._timed(client, f"/api/v1/orders?{query}", max(repeat // 3, 5)))

        mix = [
            "/api/v1/orders", "/api/v1/orders?status=open&channel=field_sales", deep_url,
            "/api/v1/inventory", "/api/v1/supply", "/api/v1/allocations", "/api/v1/events",
            "/api/v1/exceptions", "/api/v1/items", "/api/v1/customers", "/api/v1/orders?has_shortage=true",
        ]
        for path in mix[3:]:
            report(f"{path} first page", self._timed(client, path, max(repeat // 3, 5)))

        figures["floor"] = self._floor(client)
        clients = options["clients"]
        self.stdout.write(f"List mix, {clients} concurrent clients x {options['rounds']} rounds:")
        concurrent = self._concurrent(tokens[:clients], mix, options["rounds"])
        mix_all = []
        for path in mix:
            name = "mix " + ("orders deep page" if path == deep_url else path)
            report(name, concurrent[path])
            mix_all.extend(concurrent[path])
        report("mix all requests", mix_all)
        figures["endpoints"] = endpoints
        figures["clients"] = clients
        orders_p95 = max(endpoints["orders first page"]["p95_ms"], endpoints[f"orders page {page} (repeated)"]["p95_ms"])
        figures["orders_page_p95_ms"] = orders_p95
        self.stdout.write(
            f"GET /api/v1/orders p95 {orders_p95:.1f} ms a page (first and page {page}); "
            f"floor {figures['floor'].get('sql_ms', float('nan')):.1f} ms of SQL; "
            f"list mix under {clients} clients p95 {endpoints['mix all requests']['p95_ms']:.1f} ms"
        )
        return figures

    def _concurrent(self, tokens: list[str], mix: list[str], rounds: int) -> dict[str, list[float]]:
        timings: dict[str, list[float]] = defaultdict(list)
        lock = threading.Lock()
        errors: list[str] = []
        barrier = threading.Barrier(len(tokens))

        def work(index: int, token: str) -> None:
            client = self._client(token)
            try:
                self._get(client, mix[index % len(mix)])  # warm this thread's connection
                barrier.wait()
                for step in range(rounds * len(mix)):
                    path = mix[(index + step) % len(mix)]
                    elapsed, _body = self._get(client, path)
                    with lock:
                        timings[path].append(elapsed)
            except Exception as error:  # reported after the threads end
                errors.append(f"{type(error).__name__}: {error}")
                barrier.abort()
            finally:
                connections.close_all()

        threads = [threading.Thread(target=work, args=(i, t)) for i, t in enumerate(tokens)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise CommandError(f"list mix failed: {errors[0]}")
        return timings

    def _floor(self, client: Client) -> dict:
        """The SQL of one orders page under EXPLAIN ANALYZE (PostgreSQL; elsewhere its wall time)."""
        with CaptureQueriesContext(connection) as captured:
            self._get(client, "/api/v1/orders")
        statements = [q["sql"] for q in captured.captured_queries if q["sql"].lstrip().upper().startswith("SELECT")]
        floor: dict = {"statements": len(captured.captured_queries)}
        if connection.vendor != "postgresql":
            floor["sql_ms"] = round(sum(float(q["time"]) for q in captured.captured_queries) * 1000, 1)
            return floor
        total, page_ms, plans = 0.0, None, []
        with connection.cursor() as cursor:
            for sql in statements:
                cursor.execute(f"EXPLAIN (ANALYZE, FORMAT TEXT) {sql}")
                plan = [row[0] for row in cursor.fetchall()]
                executed = next((float(m.group(1)) for line in plan if (m := re.search(r"Execution Time: ([\d.]+)", line))), 0.0)
                total += executed
                if page_ms is None and 'FROM "allocation_order"' in sql:
                    page_ms = executed
                    plans = plan
        floor.update({"sql_ms": round(total, 2), "page_query_ms": page_ms, "page_plan": plans[:12]})
        self.stdout.write(
            f"Floor (EXPLAIN ANALYZE of one orders page): {len(statements)} SELECTs, {total:.2f} ms of SQL "
            f"(the page query {page_ms or 0:.2f} ms)"
        )
        for line in plans[:12]:
            self.stdout.write(f"    {line}")
        return floor
