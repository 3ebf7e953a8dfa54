from django.db import models


class VersionStatus(models.TextChoices):
    DRAFT = "draft"
    PENDING_APPROVAL = "pending_approval"
    ACTIVE = "active"
    RETIRED = "retired"


class QuotaPeriod(models.TextChoices):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


# The kind of ApprovalRequest that activates a policy version (exceptions.approvals).
POLICY_ACTIVATION = "policy_activation"
