"""What the finance screens export (``config.exports``): the audit trail, credit holds,
overrides and approvals, policy changes. Each spec reads the rows the screen's selector
yields (``allocation.audit.selectors.audit_rows`` entries, or querysets of
``allocation.audit.finance``) by attribute, so this module imports none of them.
"""
from __future__ import annotations

from typing import Any

from config.exports import Column, ExportSpec, columns
from exceptions.export_specs import APPROVALS
from policies.export_specs import POLICY_VERSIONS


def _changes(entry: Any) -> str:
    """What changed, ``field: before -> after`` per change, ``; `` between them."""
    return "; ".join(f"{name}: {before} -> {after}" for name, before, after in (entry.changes or []))


AUDIT_TRAIL = ExportSpec(
    "audit-trail",
    (
        Column("at", path="at"), Column("kind", path="kind"), Column("actor", path="actor"),
        Column("actor_kind", path="actor_kind"), Column("summary", path="summary"), Column("changes", get=_changes),
        Column("reason", path="reason"), Column("policy_version", path="policy_number"), Column("order", path="order"),
        Column("line", path="line"), Column("sku", path="sku"), Column("customer", path="customer"),
        Column("value", path="value"), Column("run", path="run_id"), Column("case", path="case_id"),
        Column("approval", path="approval_id"), Column("event", path="event_id"), Column("entry", get=lambda e: e.uid),
    ),
)

CREDIT_HOLDS = ExportSpec(
    "credit-holds",
    columns(
        ("order", "order__number"), ("line", "line"), ("customer", "order__customer__code"),
        ("customer_credit_hold", "order__customer__credit_hold"), ("order_credit_hold", "order__credit_hold"),
        ("credit_hold_reason", "order__customer__credit_hold_reason"), ("sku", "item__sku"), ("quantity", "quantity"),
        ("value_at_stake", "value_at_stake"), ("held_quantity", "held_quantity"), ("short_quantity", "short_quantity"),
        ("projected_date", "current_decision__log__projected_date"),
    ),
)

# Overrides and approvals: every request, who asked and decided, and why.
FINANCE_APPROVALS = ExportSpec("overrides-and-approvals", APPROVALS.columns)

POLICY_CHANGES = ExportSpec("policy-changes", POLICY_VERSIONS.columns)
