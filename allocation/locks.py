"""Run locks: no two runs touch one item group at once.

On PostgreSQL, transaction-scoped advisory locks taken in one fixed order: a full run holds the
global key exclusively; an incremental run holds it shared, then every SKU of its item groups
exclusively, in sorted key order (so two runs never wait on each other in a cycle). Locking
SKUs rather than whole groups stays correct when a group changes shape between two runs.
On SQLite the database lock (transactions begin IMMEDIATE) already serialises runs.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable

from django.db import connection

GLOBAL_RUN_KEY = 0x616C6C6F74  # "allot": held exclusive by full runs, shared by incremental ones


def sku_lock_key(sku: str) -> int:
    """A stable signed 64-bit advisory lock key for a SKU (never the global key)."""
    key = int.from_bytes(hashlib.blake2b(f"allot-item:{sku}".encode(), digest_size=8).digest(), "big", signed=True)
    return key if key != GLOBAL_RUN_KEY else key + 1


def lock_run_scope(skus: Iterable[str] | None) -> None:
    """Take the run locks for a full run (``skus`` None) or for the given SKUs, inside the transaction."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        if skus is None:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [GLOBAL_RUN_KEY])
            return
        cursor.execute("SELECT pg_advisory_xact_lock_shared(%s)", [GLOBAL_RUN_KEY])
        keys = sorted({sku_lock_key(sku) for sku in skus})
        if keys:
            cursor.execute(
                "SELECT count(pg_advisory_xact_lock(k)) FROM "
                "(SELECT k FROM unnest(%s::bigint[]) AS k ORDER BY k) AS ordered",
                [keys],
            )
