"""``{% followed_run %}``: the "recalculating" block of a page reached with ``?run=<id>``.

A planner action, an approval or a policy activation that queued a run redirects to its page
with ``run=<id>`` (``exceptions.views._following``); ``base.html`` renders this block there,
which polls ``allocation:run_status`` until the run finishes and then reloads the page.
"""
from __future__ import annotations

from typing import Any

from django import template

from allocation.models import AllocationRun

register = template.Library()


@register.inclusion_tag("allocation/runs/_follow.html", takes_context=True)
def followed_run(context: template.Context) -> dict[str, Any]:
    request = context.get("request")
    user = getattr(request, "user", None)
    raw = request.GET.get("run", "") if request is not None else ""
    if not raw.isdigit() or len(raw) > 18 or not getattr(user, "is_authenticated", False):
        return {"run": None}
    return {"run": AllocationRun.objects.filter(pk=int(raw), is_simulation=False).first(), "poll": False}
