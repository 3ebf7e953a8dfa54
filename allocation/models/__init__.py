"""The domain model: master data, stock and supply, orders, and allocations.

Public identifiers are the business codes (location code, SKU, customer code, supply ref,
order number + line); integer keys never leave the database. ``source_updated_at`` keeps the
``occurred_at`` of the last applied event so that older events are recognised as stale.
"""
from .catalog import Customer, Item, ItemSubstitute, Lane, Location
from .orders import Order, OrderLine
from .stock import Allocation, InventoryPosition, Supply, SupplyReceipt

__all__ = [
    "Allocation",
    "Customer",
    "InventoryPosition",
    "Item",
    "ItemSubstitute",
    "Lane",
    "Location",
    "Order",
    "OrderLine",
    "Supply",
    "SupplyReceipt",
]

from .runs import (  # noqa: E402
    AllocationRun,
    LineDecisionCurrent,
    LineDecisionLog,
    RunScope,
    RunStatus,
    RunTrigger,
    SimulationResult,
)

__all__ += [
    "AllocationRun",
    "LineDecisionCurrent",
    "LineDecisionLog",
    "RunScope",
    "RunStatus",
    "RunTrigger",
    "SimulationResult",
]

from .ops import ProcessTick  # noqa: E402

__all__ += ["ProcessTick"]

from .releases import AcceptedRecommendation, LineRelease, Wave, WaveLine  # noqa: E402

__all__ += ["AcceptedRecommendation", "LineRelease", "Wave", "WaveLine"]

from .audit import AuditChainHead, AuditSeal, AuditVerification, RoleChange  # noqa: E402

__all__ += ["AuditChainHead", "AuditSeal", "AuditVerification", "RoleChange"]
