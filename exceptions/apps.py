from django.apps import AppConfig


class ExceptionsConfig(AppConfig):
    name = "exceptions"
    verbose_name = "Exceptions and approvals"

    def ready(self) -> None:
        # Registers the approval handlers of exception actions (override, release).
        from exceptions import services, workbench  # noqa: F401
