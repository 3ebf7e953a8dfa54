"""Navigation per role: each entry is shown only to roles that may open it."""
from django.urls import NoReverseMatch, reverse

from config import roles

NAVIGATION = [
    ("Orders", "allocation:order_list", roles.READERS),
    ("Inventory", "allocation:inventory_list", roles.READERS),
    ("Supply", "allocation:supply_list", roles.READERS),
    ("Runs", "allocation:run_list", roles.READERS),
    ("Release", "allocation:release_list", {roles.PLANNER}),
    ("Exceptions", "exceptions:queue_list", {roles.PLANNER, roles.CUSTOMER_SERVICE, roles.APPROVER}),
    ("Approvals", "exceptions:approval_inbox", {roles.APPROVER}),
    ("Policies", "policies:policy_list", roles.READERS),
    ("Integrations", "integrations:overview", {roles.INTEGRATION, roles.PLANNER, roles.FINANCE}),
    ("Events", "integrations:event_list", {roles.INTEGRATION, roles.PLANNER, roles.FINANCE}),
    ("Audit", "audit:trail", roles.READERS),
    ("Exports", "integrations:export_list", {roles.FINANCE}),
]


def navigation(request):
    user = getattr(request, "user", None)
    held = roles.roles_of(user) if user is not None else frozenset()
    items = []
    for label, url_name, allowed in NAVIGATION:
        if not held & frozenset(allowed):
            continue
        try:
            url = reverse(url_name)
        except NoReverseMatch:
            continue  # the screen is not installed yet
        items.append({"label": label, "url": url, "active": request.path.startswith(url)})
    # Only the most specific match is active (/exceptions/approvals/ is not also "Exceptions").
    longest = max((len(i["url"]) for i in items if i["active"]), default=0)
    for item in items:
        item["active"] = item["active"] and len(item["url"]) == longest
    return {"nav_items": items, "user_roles": sorted(held)}
