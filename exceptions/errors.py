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
