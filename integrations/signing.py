"""The one HMAC scheme of Allot's HTTP integrations, inbound webhooks and outbound messages alike.

``X-Allot-Timestamp``: unix seconds (inbound also accepts RFC 3339). ``X-Allot-Signature``:
``sha256=`` and the hex HMAC-SHA256, keyed by the shared secret, of the timestamp header value,
a dot, then the raw body. Covering the timestamp means a captured message cannot be replayed
later under a fresh timestamp; receivers also refuse timestamps more than a few minutes off.
"""
from __future__ import annotations

import hashlib
import hmac
import time

TIMESTAMP_HEADER = "X-Allot-Timestamp"
SIGNATURE_HEADER = "X-Allot-Signature"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>``."""
    message = timestamp.encode("utf-8", "replace") + b"." + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed_headers(secret: str, body: bytes, *, now: float | None = None) -> dict[str, str]:
    """The two headers that sign ``body`` now."""
    timestamp = str(int(time.time() if now is None else now))
    return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: signature(secret, timestamp, body)}


def verify(secret: str, timestamp: str, offered: str, body: bytes, *, max_age_seconds: int = 300, now: float | None = None) -> str | None:
    """None when ``offered`` signs ``body`` under ``timestamp`` and the timestamp (unix seconds)
    is within ``max_age_seconds`` of now; otherwise the reason."""
    if not offered.startswith("sha256="):
        return "missing or invalid signature"
    if not hmac.compare_digest(signature(secret, timestamp, body).encode(), offered.strip().lower().encode("utf-8", "replace")):
        return "missing or invalid signature"
    if not timestamp.isdigit() or len(timestamp) > 12:
        return f"{TIMESTAMP_HEADER} is missing or not unix seconds"
    if abs((time.time() if now is None else now) - int(timestamp)) > max_age_seconds:
        return f"{TIMESTAMP_HEADER} is more than {max_age_seconds} seconds off"
    return None
