"""Seed many exceptions (bulk) and measure the server time of the queue page and of a claim.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/allot_h6bench \\
        python manage.py migrate && python manage.py bench_queue --exceptions 100000

Times are measured around Django's test Client (the whole request through middleware,
view, queries and template), so they are server time without network. Seeded rows carry
the prefix ``BENCH-``; a second run reuses them when the count matches.
"""
from __future__ import annotations

import datetime as dt
import random
import statistics
import time
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.test import Client
from django.test.utils import override_settings
from django.urls import reverse
from django.utils import timezone

from allocation.models import Customer, Item, Location, Order, OrderLine
from config import roles
from exceptions.choices import ExceptionStatus, ExceptionType, Severity
from exceptions.models import DecisionException, Queue

PREFIX = "BENCH-"
TYPES = [
    ExceptionType.PRIORITY_SHORTAGE,
    ExceptionType.PROMISE_AT_RISK,
    ExceptionType.SUBSTITUTION_PROPOSED,
    ExceptionType.ALLOCATION_REVERSED,
    ExceptionType.SPLIT_LIMIT,
]
QUEUE_OF_TYPE = {
    ExceptionType.PRIORITY_SHORTAGE: "shortages",
    ExceptionType.ALLOCATION_REVERSED: "shortages",
    ExceptionType.SPLIT_LIMIT: "shortages",
    ExceptionType.PROMISE_AT_RISK: "promises-at-risk",
    ExceptionType.SUBSTITUTION_PROPOSED: "substitutions",
}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


class Command(BaseCommand):
    help = "Seed N exceptions in bulk and print p50/p95 server time of the queue page and of a claim."

    def add_arguments(self, parser):
        parser.add_argument("--exceptions", type=int, default=100_000)
        parser.add_argument("--requests", type=int, default=60, help="Measured requests per scenario.")
        parser.add_argument("--allow-sqlite", action="store_true", help="Run on SQLite too (figures are not comparable).")

    def handle(self, *args, **options):
        if not settings.DATABASE_IS_POSTGRES and not options["allow_sqlite"]:
            raise CommandError("bench_queue measures PostgreSQL: set DATABASE_URL (or pass --allow-sqlite).")
        count = options["exceptions"]
        if count < 100:
            raise CommandError("--exceptions must be at least 100.")
        seeded = DecisionException.objects.filter(key__startswith=PREFIX).count()
        if seeded != count:
            self.stdout.write(f"Seeding {count} exceptions …")
            started = time.perf_counter()
            self._seed(count)
            self.stdout.write(f"  seeded in {time.perf_counter() - started:.1f} s")
        else:
            self.stdout.write(f"Reusing {count} seeded exceptions.")
        user, _ = User.objects.get_or_create(username="bench_planner")
        user.groups.add(Group.objects.get_or_create(name=roles.PLANNER)[0])
        with override_settings(ALLOWED_HOSTS=["testserver", *settings.ALLOWED_HOSTS]):
            self._measure(user, options["requests"])

    def _seed(self, count: int) -> None:
        rng = random.Random(42)
        now = timezone.now()
        with transaction.atomic():
            DecisionException.objects.filter(key__startswith=PREFIX).delete()
            Order.objects.filter(number__startswith=PREFIX).delete()
            location, _ = Location.objects.get_or_create(
                code=f"{PREFIX}DC", defaults={"name": "Bench DC", "region": "east", "kind": "warehouse"}
            )
            items = [
                Item.objects.get_or_create(sku=f"{PREFIX}SKU-{i}", defaults={"item_class": "bench"})[0] for i in range(50)
            ]
            customers = [
                Customer.objects.get_or_create(
                    code=f"{PREFIX}C{i}",
                    defaults={"name": f"Bench {i}", "tier": 1 + i % 4, "segment": "bench", "region": "east", "home_location": location},
                )[0]
                for i in range(200)
            ]
            lines_per_order = 5
            orders = Order.objects.bulk_create(
                [
                    Order(
                        number=f"{PREFIX}{n:07d}",
                        customer=customers[n % len(customers)],
                        channel="bench",
                        created_at=now - dt.timedelta(days=rng.randint(0, 30)),
                        requested_date=now.date() + dt.timedelta(days=rng.randint(0, 20)),
                    )
                    for n in range((count + lines_per_order - 1) // lines_per_order)
                ],
                batch_size=5000,
            )
            lines = OrderLine.objects.bulk_create(
                [
                    OrderLine(
                        order=order,
                        line=i + 1,
                        item=items[(n * lines_per_order + i) % len(items)],
                        quantity=Decimal(rng.randint(1, 500)),
                        unit_price=Decimal(rng.randint(1, 200)),
                        unit_cost=Decimal(1),
                    )
                    for n, order in enumerate(orders)
                    for i in range(lines_per_order)
                ][:count],
                batch_size=5000,
            )
            queues = {q.code: q for q in Queue.objects.all()}
            exceptions = []
            for n, line in enumerate(lines):
                kind = TYPES[n % len(TYPES)]
                queue = queues[QUEUE_OF_TYPE[kind]]
                raised = now - dt.timedelta(minutes=rng.randint(0, 3 * 24 * 60))
                score = Decimal(rng.randint(0, 100_000)) / 10
                band = Severity.HIGH if score > 7000 else Severity.MEDIUM if score > 3000 else Severity.LOW
                value = line.quantity * line.unit_price
                exceptions.append(
                    DecisionException(
                        type=kind,
                        key=f"{PREFIX}{kind}:{line.pk}",
                        status=ExceptionStatus.OPEN if n % 10 else ExceptionStatus.RESOLVED,
                        message=f"{kind} on {line.order.number}/{line.line}",
                        line=line,
                        order=line.order,
                        item=line.item,
                        jeopardy_score=score,
                        jeopardy_band=band,
                        value=value,
                        raised_at=raised,
                        updated_at=raised,
                        queue=queue,
                        due_at=raised + dt.timedelta(minutes=queue.sla_minutes),
                    )
                )
            # Bulk seed without per-row history (a benchmark fixture, not business data).
            DecisionException.objects.bulk_create(exceptions, batch_size=5000)
        from django.db import connection

        if connection.vendor == "postgresql":
            # VACUUM sets the visibility map that index-only counts need; it cannot run
            # inside a transaction (tests), where ANALYZE has to do.
            statement = "ANALYZE" if connection.in_atomic_block else "VACUUM ANALYZE"
            with connection.cursor() as cursor:
                cursor.execute(f"{statement} exceptions_decisionexception")

    def _measure(self, user: User, requests: int) -> None:
        client = Client()
        client.force_login(user)
        page_url = reverse("exceptions:queue_detail", args=["shortages"])
        scenarios = {
            "queue page (status=active, band=high, sort=sla)": f"{page_url}?status=active&band=high&sort=sla",
            "queue page (sort=jeopardy, page 3)": f"{page_url}?sort=jeopardy&page=3",
            "queue page HTMX rows (type=split_limit, sort=value)": f"{page_url}?part=rows&type=split_limit&sort=value",
        }
        for label, url in scenarios.items():
            headers = {"HTTP_HX_REQUEST": "true"} if "part=rows" in url else {}
            client.get(url, **headers)  # warm up
            timings, cpu = [], []
            for _ in range(requests):
                started, started_cpu = time.perf_counter(), time.process_time()
                response = client.get(url, **headers)
                timings.append((time.perf_counter() - started) * 1000)
                cpu.append((time.process_time() - started_cpu) * 1000)
                if response.status_code != 200:
                    raise CommandError(f"{url} answered {response.status_code}")
            self._report(label, timings, cpu)
        candidates = list(
            DecisionException.objects.filter(key__startswith=PREFIX, status=ExceptionStatus.OPEN, queue__code="shortages")
            .order_by("?")
            .values_list("pk", "version")[: requests + 1]
        )
        timings, cpu = [], []
        for n, (pk, version) in enumerate(candidates):
            url = reverse("exceptions:exception_action", args=[pk, "claim"])
            started, started_cpu = time.perf_counter(), time.process_time()
            response = client.post(url, {"version": version})
            elapsed = (time.perf_counter() - started) * 1000
            elapsed_cpu = (time.process_time() - started_cpu) * 1000
            if response.status_code != 302:
                raise CommandError(f"claim of #{pk} answered {response.status_code}")
            if n:  # the first one warms up
                timings.append(elapsed)
                cpu.append(elapsed_cpu)
        self._report("claim action (POST, redirect)", timings, cpu)
        # Give the claimed ones back so that a rerun measures the same thing.
        DecisionException.objects.filter(pk__in=[pk for pk, _v in candidates]).update(status=ExceptionStatus.OPEN, assignee=None)

    def _report(self, label: str, timings: list[float], cpu: list[float]) -> None:
        """Wall time (what a user waits, database included) and this process's CPU time
        (the Python side alone, which a busy machine does not inflate as much)."""
        self.stdout.write(
            f"{label}: n={len(timings)} p50={statistics.median(timings):.1f} ms "
            f"p95={percentile(timings, 0.95):.1f} ms max={max(timings):.1f} ms "
            f"(python cpu p50={statistics.median(cpu):.1f} p95={percentile(cpu, 0.95):.1f} ms)"
        )
