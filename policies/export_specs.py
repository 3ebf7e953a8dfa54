"""What the policy list exports (``config.exports``)."""
from __future__ import annotations

from config.exports import ExportSpec, columns

POLICY_VERSIONS = ExportSpec(
    "policy-versions",
    columns(
        ("version", "number"), ("name", "name"), ("status", "status"), ("effective_from", "effective_from"),
        ("created_by", "created_by__username"), ("submitted_by", "submitted_by__username"),
        ("approved_by", "approved_by__username"), ("note", "note"),
    ),
)
