from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from config import roles

# Each role's landing screen, in order of preference when a user holds several.
LANDING = [
    (roles.PLANNER, "exceptions:queue_list"),
    (roles.CUSTOMER_SERVICE, "allocation:order_list"),
    (roles.APPROVER, "exceptions:approval_inbox"),
    (roles.POLICY_ADMIN, "policies:policy_list"),
    (roles.FINANCE, "allocation:order_list"),
    (roles.INTEGRATION, "integrations:event_list"),
]


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Everyone with a role lands on the dashboard (their role's KPIs and what needs them)."""
    from django.urls import NoReverseMatch, reverse

    held = roles.roles_of(request.user)
    if held:
        return redirect(reverse("allocation:dashboard"))
    for role, url_name in LANDING:
        if role in held:
            try:
                return redirect(reverse(url_name))
            except NoReverseMatch:
                continue
    return render(request, "no_role.html", status=403 if not held else 200)
