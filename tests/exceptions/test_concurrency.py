"""Two people acting on one exception at the same moment, on PostgreSQL row locks: exactly
one wins, the other gets the stale answer (409), and nothing is half-applied."""
import threading
from decimal import Decimal

import pytest
from django.db import connection

from allocation.models import Allocation
from exceptions import services
from exceptions.errors import StaleAction
from exceptions.models import DecisionException

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def race(*calls):
    """Run each call in its own thread, released together; return each outcome."""
    barrier = threading.Barrier(len(calls))
    outcomes: list = [None] * len(calls)

    def worker(index, call):
        try:
            barrier.wait(timeout=10)
            outcomes[index] = call()
        except Exception as error:  # the outcome under test, kept for the assertions
            outcomes[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return outcomes


@pytest.fixture
def scene(world, recorded_runs):
    world.stock(world.east, 40)
    line = world.line(world.shop, 20, unit_price="10")
    world.allocate(line, world.east, 5)
    return line, world.exception(line)


def test_two_simultaneous_claims_one_wins(scene, planner, customer_service):
    _line, exception = scene
    outcomes = race(
        lambda: services.claim(exception.pk, actor=planner, expected_version=1),
        lambda: services.claim(exception.pk, actor=customer_service, expected_version=1),
    )
    winners = [o for o in outcomes if isinstance(o, services.ActionResult)]
    losers = [o for o in outcomes if isinstance(o, StaleAction)]
    assert (len(winners), len(losers)) == (1, 1)
    exception.refresh_from_db()
    assert exception.version == 2
    assert exception.assignee_id == winners[0].exception.assignee_id
    assert losers[0].current["status"] == "claimed"
    assert DecisionException.history.filter(id=exception.pk).count() == 3  # created, routed, claimed once


def test_two_simultaneous_overrides_one_wins_nothing_half_applied(scene, planner, customer_service):
    line, exception = scene
    outcomes = race(
        lambda: services.override(
            exception.pk, actor=planner, expected_version=1, location="DC-EAST", quantity="12", reason_code="expedite", note="a"
        ),
        lambda: services.override(
            exception.pk, actor=customer_service, expected_version=1, location="DC-EAST", quantity="7", reason_code="expedite", note="b"
        ),
    )
    winners = [o for o in outcomes if isinstance(o, services.ActionResult)]
    losers = [o for o in outcomes if isinstance(o, StaleAction)]
    assert (len(winners), len(losers)) == (1, 1), outcomes
    winner_quantity = Decimal("12.000") if winners[0].exception.assignee_id == planner.pk else Decimal("7.000")
    assert list(Allocation.objects.filter(line=line).values_list("quantity", "state")) == [(winner_quantity, "pinned")]
    exception.refresh_from_db()
    assert (exception.status, exception.version) == ("resolved", 2)


def test_bulk_claim_racing_a_single_claim(scene, planner, customer_service, world):
    _line, exception = scene
    other = world.exception(world.line(world.shop, 1))
    outcomes = race(
        lambda: services.bulk_claim({exception.pk: 1, other.pk: 1}, actor=planner),
        lambda: services.claim(exception.pk, actor=customer_service, expected_version=1),
    )
    bulk, single = outcomes
    exception.refresh_from_db()
    if isinstance(single, StaleAction):
        assert (bulk.done, exception.assignee_id) == ([exception.pk, other.pk], planner.pk)
    else:
        assert (bulk.done, bulk.stale, exception.assignee_id) == ([other.pk], [exception.pk], customer_service.pk)
    assert exception.version == 2
