from django.apps import AppConfig


class AllocationConfig(AppConfig):
    name = "allocation"
    verbose_name = "Allocation"

    def ready(self) -> None:
        # Approval handlers of release waves (kind line.release), wherever a request is decided.
        from allocation.releases import register_approvals

        register_approvals()
