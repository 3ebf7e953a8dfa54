from django.apps import AppConfig


class ExceptionsConfig(AppConfig):
    name = "exceptions"
    verbose_name = "Exceptions and approvals"

    def ready(self) -> None:
        # Registers the approval handlers of exception actions (override, release).
        # preferences: the person's date format goes into their session at login.
        from exceptions import preferences, services, workbench  # noqa: F401

        preferences.connect_signals()
