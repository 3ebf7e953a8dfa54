from django.apps import AppConfig


class AllocationConfig(AppConfig):
    name = "allocation"
    verbose_name = "Allocation"

    def ready(self) -> None:
        # Approval handlers of release waves (kind line.release), wherever a request is decided.
        from allocation.releases import register_approvals

        register_approvals()
        # Decision support: the approval handlers of transfer and expedite recommendations.
        from allocation.insights import expedite, replenishment, transfers  # noqa: F401
