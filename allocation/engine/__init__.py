"""Pure allocation engine: ranks open lines and allocates supply (no Django).

Public entry points: :func:`allocate`, :func:`item_groups`, :func:`rank_key` and
:func:`score`; the value types live in :mod:`allocation.engine.types`.
"""

from allocation.engine.groups import item_groups
from allocation.engine.run import allocate, period_key
from allocation.engine.scoring import effective_strategy, rank_key, score
from allocation.engine.types import (
    DEFAULT_WEIGHTS,
    STRATEGY_ORDER,
    AllocationDecision,
    EngineInput,
    EngineResult,
    ExistingAllocation,
    Factor,
    FairnessPrice,
    Inbound,
    Item,
    Lane,
    Line,
    LineDecision,
    LineSettings,
    OnHand,
    Protection,
    Quota,
    RaisedException,
    ShortfallReason,
)

__all__ = [
    "DEFAULT_WEIGHTS", "STRATEGY_ORDER", "AllocationDecision", "EngineInput", "EngineResult",
    "ExistingAllocation", "Factor", "FairnessPrice", "Inbound", "Item", "Lane", "Line", "LineDecision",
    "LineSettings", "OnHand", "Protection", "Quota", "RaisedException", "ShortfallReason", "allocate",
    "effective_strategy", "item_groups", "period_key", "rank_key", "score",
]
