"""Actions that ask before they act (issue 9, safe actions).

Releasing a line to the warehouse cannot be undone by a run, so it asks for confirmation
when the line is worth more than its ``auto_release_max_value`` (the policy setting resolved
for the line, the same threshold above which it also needs an approver) or belongs to a
tier-1 customer. Taking over a colleague's claim asks for confirmation and a reason
(``services.claim``). The screens show what ``release_confirmation`` says beside the button.
"""
from __future__ import annotations

from allocation import overrides
from allocation.models import OrderLine

TIER_ONE = 1


def release_confirmation(line: OrderLine | None) -> str:
    """Why releasing ``line`` asks for confirmation ('' when it does not), in plain words."""
    if line is None:
        return ""
    reasons = []
    customer = line.order.customer
    if customer.tier == TIER_ONE:
        reasons.append(f"{customer.name or customer.code} is a tier-1 customer")
    above = overrides.release_needs_approval(line)
    if above:
        reasons.append(above)
    return "; ".join(reasons)
