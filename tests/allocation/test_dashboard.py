"""The dashboard (every role's landing page), a KPI's page and CSV, and GET /api/v1/kpis."""
import datetime as dt

import pytest

from allocation import kpis
from allocation.models import KpiSnapshot
from tests.allocation.test_kpis import AS_OF, NOW, book  # noqa: F401  (the hand-made book fixture)
from tests.fixtures.personas import make_user


@pytest.fixture
def stored(book):  # noqa: F811
    ctx = kpis.Context(now=NOW, as_of=AS_OF)
    kpis.snapshot(AS_OF - dt.timedelta(days=1), ctx=ctx)
    kpis.snapshot(AS_OF, ctx=ctx)
    return ctx


@pytest.mark.parametrize("role,title,card", [
    ("planner", "Planning", "Open cases"),
    ("customer_service", "Customer service", "Fill rate by tier"),
    ("policy_admin", "Policy", "Quota and protection use"),
    ("finance", "Finance", "Credit-held value"),
    ("integration", "Integration", "Feed freshness"),
    ("approver", "Approvals", "Overrides and approvals"),
])
def test_each_role_lands_on_its_dashboard(client, stored, role, title, card):
    client.force_login(make_user(f"u-{role}", role))
    response = client.get("/", follow=True)
    assert response.redirect_chain[-1][0] == "/dashboard/"
    body = response.content.decode()
    assert f">{title}</h2>" in body and card in body


def test_the_dashboard_reads_snapshots_with_a_fixed_number_of_queries(client, stored, django_assert_max_num_queries):
    client.force_login(make_user("boss", "planner", "customer_service", "policy_admin", "finance", "integration"))
    with django_assert_max_num_queries(12):
        response = client.get("/dashboard/")
    assert response.status_code == 200
    KpiSnapshot.objects.bulk_create([
        KpiSnapshot(day=AS_OF - dt.timedelta(days=d), kpi=k.code, segment="", value=1.0)
        for k in kpis.KPIS for d in range(2, 30)
    ])
    with django_assert_max_num_queries(12):
        assert client.get("/dashboard/").status_code == 200


def test_cards_show_value_change_trend_table_and_drill_links(client, stored):
    client.force_login(make_user("pat", "planner"))
    body = client.get("/dashboard/").content.decode()
    assert 'data-kpi="backorder_lines"' in body
    # the trend is a table of the stored days (the chart draws from it; without JS it is the figure)
    assert f"<td>{(AS_OF - dt.timedelta(days=1)).isoformat()}</td>" in body
    # drill-down to the filtered list behind the number
    assert '<a href="/orders/?status=open&amp;has_shortage=true" class="kpi-drill">' in body
    assert '<a href="/exceptions/" class="kpi-drill">' in body  # not just the navigation's link


def test_customer_service_sees_orders_at_risk(client, stored, book):  # noqa: F811
    from decimal import Decimal

    from exceptions.models import DecisionException

    l2 = book["lines"][1]
    DecisionException.objects.create(type="promise_at_risk", key="case:O2/1", line=l2, message="m", raised_at=NOW,
                                     updated_at=NOW, value=Decimal("50"))
    client.force_login(make_user("cs", "customer_service"))
    body = client.get("/dashboard/").content.decode()
    assert "Orders at risk" in body and '/orders/O2/">O2</a>' in body
    client.force_login(make_user("pat", "planner"))
    assert "Orders at risk" not in client.get("/dashboard/").content.decode()


def test_a_kpi_page_lists_its_values_and_exports_them_as_csv(client, stored):
    client.force_login(make_user("admin1", "policy_admin"))
    page = client.get("/dashboard/kpis/fill_rate_segment/")
    assert page.status_code == 200 and "healthcare" in page.content.decode()
    csv = b"".join(client.get("/dashboard/kpis/fill_rate_segment/?export=csv").streaming_content).decode("utf-8-sig")
    lines = csv.strip().splitlines()
    assert lines[0] == "KPI,Day,Segment,Value,Unit,Demo history"
    assert f"fill_rate_segment,{AS_OF.isoformat()},,25.0,%,false" in lines
    assert f"fill_rate_segment,{AS_OF.isoformat()},retail,0.0,%,false" in lines


def test_a_kpi_outside_ones_roles_is_not_found(client, stored):
    client.force_login(make_user("int", "integration"))
    assert client.get("/dashboard/kpis/quota_use/").status_code == 404
    assert client.get("/dashboard/kpis/no-such-kpi/").status_code == 404


def test_anonymous_gets_nothing(client, stored):
    assert client.get("/dashboard/").status_code == 302
    assert client.get("/api/v1/kpis").status_code in (401, 403)


def test_refresh_is_a_post_that_stores_todays_figures(client, book, settings):  # noqa: F811
    settings.CELERY_TASK_ALWAYS_EAGER = True  # the task runs here, as a worker would run it
    client.force_login(make_user("pat", "planner"))
    assert client.get("/dashboard/refresh/").status_code == 405
    assert client.post("/dashboard/refresh/").status_code == 302
    assert KpiSnapshot.objects.filter(kpi="fill_rate_segment", segment="").exists()


def test_the_api_returns_every_kpi_with_definition_unit_and_series(client, stored):
    client.force_login(make_user("fin", "finance"))
    body = client.get(f"/api/v1/kpis?from={(AS_OF - dt.timedelta(days=1)).isoformat()}&to={AS_OF.isoformat()}").json()
    assert [k["code"] for k in body["kpis"]] == [k.code for k in kpis.KPIS]
    fill = next(k for k in body["kpis"] if k["code"] == "fill_rate_segment")
    assert fill["unit"] == "%" and fill["definition"].startswith("Share of open lines")
    assert [(p["day"], p["value"]) for p in fill["series"]] == [
        ((AS_OF - dt.timedelta(days=1)).isoformat(), 25.0), (AS_OF.isoformat(), 25.0)]
    by_segment = client.get("/api/v1/kpis?by=segment").json()
    fill = next(k for k in by_segment["kpis"] if k["code"] == "fill_rate_segment")
    assert {p["segment"] for p in fill["series"]} == {"", "healthcare", "retail"}


@pytest.mark.parametrize("query,field", [
    ("from=2026-13-01", "from"), ("to=yesterday", "to"), ("by=customer", "by"),
    ("from=2026-06-02&to=2026-06-01", "from"), ("from=2020-01-01&to=2026-06-01", "from"),
    ("from=2026-06-01%00", "from"),
])
def test_the_api_names_each_bad_parameter(client, stored, query, field):
    client.force_login(make_user("fin", "finance"))
    response = client.get(f"/api/v1/kpis?{query}")
    assert response.status_code == 400 and field in response.json()
