"""The queue screen's reads (issue 9, "a queue a planner can work all day"): the column
sorts in either direction, grouping by customer / item / reason, the Work and Information
tabs, the rows as the table shows them, and the case that opens in the side panel after an
action (the next one in the list's own order).

Every ordering here is a keyset ordering (config/pagination.py): the group's column first,
then the sort's columns, then ``pk``, so pages and "next case" walk the same total order."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import Case, Count, IntegerField, Q, QuerySet, Sum, Value, When
from django.http import QueryDict

from config import bounds, pagination
from exceptions import routing
from exceptions.choices import (
    ACTIVE_STATUSES,
    REASON_SEVERITY,
    CaseKind,
    ExceptionStatus,
    ExceptionType,
)
from exceptions.models import DecisionException

# Column -> its ordering in the column's natural direction (a leading "-" on ?sort= reverses
# every column of it). The first four are the sorts the queue always had.
SORTS: dict[str, tuple[str, ...]] = {
    "jeopardy": ("-jeopardy_score", "due_at", "pk"),
    "sla": ("due_at", "-jeopardy_score", "pk"),
    "age": ("raised_at", "pk"),
    "value": ("-value", "pk"),
    "case": ("pk",),
    "reason": ("reason_rank", "-jeopardy_score", "pk"),
    "order": ("order__number", "line__line", "pk"),
    "customer": ("order__customer__code", "-jeopardy_score", "pk"),
    "item": ("item__sku", "-jeopardy_score", "pk"),
    "status": ("status", "-jeopardy_score", "pk"),
    "assignee": ("assignee__username", "-jeopardy_score", "pk"),
}
SORT_LABELS = {
    "jeopardy": "Jeopardy", "sla": "SLA due", "age": "Age", "value": "Value", "case": "Case", "reason": "Reason",
    "order": "Order / line", "customer": "Customer", "item": "Item", "status": "Status", "assignee": "Assignee",
}
# The column headings (short: one line at 1280 px beside the panel); the title says it in full.
HEADINGS = {"case": "#", "order": "Order", "jeopardy": "Band", "sla": "Due", "assignee": "who"}
DEFAULT_SORT = "jeopardy"

# Group -> (its ordering column, the column its rows are counted by).
GROUPS: dict[str, tuple[str, str]] = {
    "customer": ("order__customer__code", "order__customer__code"),
    "item": ("item__sku", "item__sku"),
    "reason": ("reason_rank", "type"),
}
GROUP_LABELS = {"": "None", "customer": "Customer", "item": "Item", "reason": "Reason"}
KINDS = {CaseKind.WORK.value: "Work", CaseKind.INFORMATION.value: "Information"}
DEFAULT_KIND = CaseKind.WORK.value

# The parameters the list's URL, its saved views and its pager carry (never the cursor).
LIST_PARAMS = ("status", "type", "assignee", "band", "sla", "q", "sort", "group", "kind")
DEFAULTS = {"status": "active", "sort": DEFAULT_SORT, "kind": DEFAULT_KIND}  # left out: the list's URL stays short

# Severity rank of the routing reason, most severe first (unknown types after them, by name).
_RANKED = [t for t in REASON_SEVERITY if t in ExceptionType.values] + sorted(
    t for t in ExceptionType.values if t not in REASON_SEVERITY
)
REASON_LABELS = dict(ExceptionType.choices)


def reason_rank() -> Case:
    return Case(*(When(type=t, then=Value(i)) for i, t in enumerate(_RANKED)), default=Value(len(_RANKED)),
                output_field=IntegerField())


@dataclass(frozen=True)
class ListView:
    """How the list is shown: the sort column and direction, the group, the kind tab."""

    sort: str = DEFAULT_SORT
    reverse: bool = False
    group: str = ""
    kind: str = DEFAULT_KIND
    errors: tuple[tuple[str, str], ...] = ()

    @property
    def sort_param(self) -> str:
        return ("-" if self.reverse else "") + self.sort

    def ordering(self) -> list[str]:
        """The keyset ordering: the group's column, then the sort's (reversed on request)."""
        columns = [_flip(c) for c in SORTS[self.sort]] if self.reverse else list(SORTS[self.sort])
        if self.group:
            lead = GROUPS[self.group][0]
            columns = [lead] + [c for c in columns if c.lstrip("-") != lead]
        return columns


def _flip(column: str) -> str:
    return column[1:] if column.startswith("-") else "-" + column


def parse_view(params: Any) -> ListView:
    """``sort`` (a column, ``-`` to reverse), ``group`` and ``kind`` of the querystring;
    a bad value is named in ``errors`` and the default is shown."""
    errors = []

    def pick(name: str, allowed, default: str) -> str:
        value = (params.get(name) or "").strip()
        if not value:
            return default
        problem = bounds.text_problem(value)
        if problem is None and (value[1:] if name == "sort" and value.startswith("-") else value) not in allowed:
            problem = f"unknown value {value[:40]!r}"
        if problem is not None:
            errors.append((name, problem))
            return default
        return value

    sort = pick("sort", SORTS, DEFAULT_SORT)
    return ListView(
        sort=sort.removeprefix("-"), reverse=sort.startswith("-"), group=pick("group", GROUPS, ""),
        kind=pick("kind", KINDS, DEFAULT_KIND), errors=tuple(errors),
    )


def filter_params(params: QueryDict, view: ListView) -> QueryDict:
    """``params`` as ``selectors.parse_filters`` reads them: this screen's sort is applied here,
    and the kind is the tab's."""
    filtered = params.copy()
    filtered.pop("sort", None)
    filtered["kind"] = view.kind
    return filtered


def ordered(qs: QuerySet, view: ListView) -> QuerySet:
    """The filtered cases in the view's order, with what the rows and the sort need loaded."""
    return (
        qs.annotate(reason_rank=reason_rank())
        .select_related("queue", "assignee", "line__order__customer", "line__item", "order__customer", "item")
        .order_by(*view.ordering())
    )


def list_query(params: Any) -> QueryDict:
    """The list's own parameters of ``params`` (what a saved view keeps, what the pager and
    the panel carry): refused values are not carried on, the cursor never."""
    query = QueryDict(mutable=True)
    for key in LIST_PARAMS:
        value = params.get(key)
        if value and value != DEFAULTS.get(key) and bounds.text_problem(value) is None:
            query[key] = value
    return query


def with_params(query: QueryDict, **changes: str | None) -> str:
    """``query`` with ``changes`` applied (``None`` or "" removes a key), url-encoded."""
    changed = query.copy()
    for key, value in changes.items():
        if value:
            changed[key] = value
        else:
            changed.pop(key, None)
    return changed.urlencode()


def sort_links(query: QueryDict, view: ListView) -> dict[str, dict[str, str]]:
    """Per column header: the querystring that sorts by it (again: the other way) and the
    arrow showing the current sort."""
    links = {}
    for column in SORTS:
        current = column == view.sort
        target = ("" if view.reverse else "-") + column if current else column
        links[column] = {
            "query": with_params(query, sort=None if target == DEFAULT_SORT else target),
            "arrow": ("▲" if _ascending(view) else "▼") if current else "",
            "label": SORT_LABELS[column],
            "heading": HEADINGS.get(column, SORT_LABELS[column]),
            "aria": "ascending" if current and _ascending(view) else "descending" if current else "none",
        }
    return links


def _ascending(view: ListView) -> bool:
    natural_descending = SORTS[view.sort][0].startswith("-")
    return natural_descending == view.reverse


# --------------------------------------------------------------------------- counts


def counts(base: QuerySet, now: dt.datetime) -> dict[str, int]:
    """The queue's active work cases per status and SLA state, and the active cases of each
    tab, in one query (information cases have no SLA)."""
    soon = now + routing.DUE_SOON_WINDOW
    work = Q(kind=CaseKind.WORK)
    return base.filter(status__in=ACTIVE_STATUSES).aggregate(
        open=Count("pk", filter=work & Q(status=ExceptionStatus.OPEN)),
        claimed=Count("pk", filter=work & Q(status=ExceptionStatus.CLAIMED)),
        awaiting_approval=Count("pk", filter=work & Q(status=ExceptionStatus.AWAITING_APPROVAL)),
        overdue=Count("pk", filter=work & Q(due_at__lte=now)),
        due_soon=Count("pk", filter=work & Q(due_at__gt=now, due_at__lte=soon)),
        work=Count("pk", filter=work),
        information=Count("pk", filter=Q(kind=CaseKind.INFORMATION)),
    )


# --------------------------------------------------------------------------- rows


@dataclass(frozen=True)
class Urls:
    """URL prefixes built by one ``reverse`` each (reversing per row costs more than the rows)."""

    detail: str
    panel: str

    def detail_of(self, pk: int) -> str:
        return f"{self.detail}{pk}/"

    def panel_of(self, pk: int) -> str:
        return f"{self.panel}{pk}/"


def short_age(delta: dt.timedelta) -> str:
    """The age in its largest unit ('183 d', '5 h', '45 min'): the row's narrow column."""
    minutes = int(delta.total_seconds() // 60)
    if minutes >= 24 * 60:
        return f"{minutes // (24 * 60)} d"
    if minutes >= 60:
        return f"{minutes // 60} h"
    return f"{minutes} min"


def reasons_of(case: DecisionException) -> list[str]:
    return list(case.reason_types or [case.type])


def group_key(case: DecisionException, group: str) -> Any:
    if group == "customer":
        return case.order.customer.code if case.order_id else None
    if group == "item":
        return case.item.sku if case.item_id else None
    if group == "reason":
        return case.type
    return None


def group_label(case: DecisionException, key: Any, group: str) -> str:
    """A group's heading, from its first case: the customer's code, name and tier, the item's
    SKU, the reason in words."""
    if group == "reason":
        return REASON_LABELS.get(key, key)
    if key is None:
        return {"customer": "No customer", "item": "No item"}.get(group, "—")
    if group == "customer":
        customer = case.order.customer
        return f"{customer.code} {customer.name} · tier {customer.tier}" if customer.name else f"{customer.code} · tier {customer.tier}"
    return str(key)


def row(case: DecisionException, now: dt.datetime, urls: Urls, *, done: bool = False) -> dict[str, Any]:
    """One row of the table (also the row an action sends back to replace the one shown)."""
    reasons = reasons_of(case)
    customer = case.order.customer if case.order_id else None
    return {
        "exception": case,
        "sla": routing.sla_status(case.due_at, now),
        "age": routing.age_text(routing.age(case.raised_at, now)),
        "short_age": short_age(routing.age(case.raised_at, now)),
        "value": f"{case.value:,.0f}",
        "score": f"{case.jeopardy_score:.0f}",
        "url": urls.detail_of(case.pk),
        "claim_url": urls.detail_of(case.pk) + "claim/",
        "panel_url": urls.panel_of(case.pk),
        "reason_label": REASON_LABELS.get(reasons[0], reasons[0]),
        "more_reasons": len(reasons) - 1,
        "reason_title": " · ".join(REASON_LABELS.get(r, r) for r in reasons) + (f" — {case.message}" if case.message else ""),
        "customer": customer,
        "done": done or not case.is_active,
    }


def rows_with_groups(cases: list[DecisionException], qs: QuerySet, view: ListView, now: dt.datetime, urls: Urls) -> list[dict]:
    """The page's rows; grouped, a heading row opens each group with the group's count and
    value over the whole filtered list (one query for the groups on the page)."""
    built = [row(case, now, urls) for case in cases]
    if not view.group:
        return built
    keys = []
    for case in cases:
        key = group_key(case, view.group)
        if key not in keys:
            keys.append(key)
    column = GROUPS[view.group][1]
    wanted = Q(**{f"{column}__in": [k for k in keys if k is not None]})
    if None in keys:
        wanted |= Q(**{f"{column}__isnull": True})
    totals = {
        entry[column]: entry
        for entry in qs.order_by().filter(wanted).values(column).annotate(n=Count("pk"), total=Sum("value"))
    }
    result: list[dict] = []
    previous: Any = object()
    for case, entry in zip(cases, built, strict=True):
        key = group_key(case, view.group)
        if key != previous:
            total = totals.get(key, {})
            result.append({"group": group_label(case, key, view.group), "count": total.get("n", 0),
                           "total": f"{total.get('total') or 0:,.0f}"})
            previous = key
        result.append(entry)
    return result


# --------------------------------------------------------------------------- the next case


def for_keyset(pk: int) -> DecisionException | None:
    """A case with every column an ordering of this screen reads (no query per column)."""
    return (
        DecisionException.objects.annotate(reason_rank=reason_rank())
        .select_related("line__order__customer", "line__item", "order__customer", "item", "assignee")
        .filter(pk=pk)
        .first()
    )


def next_case(qs: QuerySet, view: ListView, after: DecisionException) -> DecisionException | None:
    """The case after ``after`` in the list (``qs``, filtered and ordered by ``view``): the
    first one past its keyset position, else the list's first (the list goes round), never
    ``after`` itself. ``after`` need not be in the list any more (an action took it out)."""
    columns = pagination.keyset_columns(qs, view.ordering())
    values = [column.value_of(after) for column in columns]
    # The pages' own order (NULL the greatest value on every database), not the database's default.
    keyset = qs.order_by(*(column.order() for column in columns)).exclude(pk=after.pk)
    following = keyset.filter(pagination.keyset_filter(columns, values)).first()
    return following if following is not None else keyset.first()


def stays_with_actor(case: DecisionException, actor: Any, queue_id: int | None) -> bool:
    """Whether the case still waits for ``actor`` in this queue after an action (claimed by
    them, released, commented): then the panel keeps it; otherwise the next case opens."""
    if not case.is_active or case.status == ExceptionStatus.AWAITING_APPROVAL or case.queue_id != queue_id:
        return False
    return case.assignee_id in (None, actor.pk)
