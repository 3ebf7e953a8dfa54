"""Domain errors of the policies app; each carries structured data for a 4xx answer."""
from __future__ import annotations


class PolicyError(Exception):
    code = "policy_error"

    def __init__(self, message: str, **data):
        super().__init__(message)
        self.message = message
        self.data = data


class PolicyValidationError(PolicyError):
    """A document, rule, protection or quota is invalid; ``errors`` name each field."""

    code = "invalid"

    def __init__(self, errors: list[dict[str, str]]):
        summary = "; ".join(f"{e['field'] or 'document'}: {e['message']}" for e in errors[:5])
        super().__init__(summary, errors=errors)
        self.errors = errors


class PolicyStateError(PolicyError):
    """The version is not in a state that allows the action (e.g. editing an active version)."""

    code = "invalid_state"


class PolicyPermissionError(PolicyError):
    """The actor's role does not allow the action."""

    code = "forbidden"


class NoActivePolicy(PolicyError):
    code = "no_active_policy"
