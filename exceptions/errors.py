"""Domain errors of the exceptions app: they carry structured data for 4xx answers."""


class ApprovalError(Exception):
    code = "approval_error"

    def __init__(self, message: str, **data):
        super().__init__(message)
        self.message = message
        self.data = data


class SelfApprovalRefused(ApprovalError):
    code = "self_approval"


class ApprovalNotPending(ApprovalError):
    code = "not_pending"


class ApprovalNotAllowed(ApprovalError):
    code = "not_allowed"


class ActionError(Exception):
    """Base of the errors an exception action raises; ``data`` is structured for the API."""

    code = "action_error"

    def __init__(self, message: str, **data):
        super().__init__(message)
        self.message = message
        self.data = data


class StaleAction(ActionError):
    """The exception changed since the caller read it: ``current`` is its state now and
    ``changes`` lists what happened after the version the caller acted on (API: 409)."""

    code = "stale"

    def __init__(self, message: str, *, current: dict, changes: list[dict]):
        super().__init__(message, current=current, changes=changes)
        self.current = current
        self.changes = changes


class InvalidAction(ActionError):
    """Bad input or an action that does not apply in the exception's state (API: 400).
    ``field`` names the input at fault when there is one."""

    code = "invalid"


class ActionNotAllowed(ActionError):
    """The actor's role does not allow this action (API: 403)."""

    code = "forbidden"


class ExceptionNotFound(ActionError):
    """No such exception (or not visible to the actor): API 404."""

    code = "not_found"
