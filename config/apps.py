from django.apps import AppConfig


class AllotConfig(AppConfig):
    """The project package as an app: it connects the authentication signals (config.auth)."""

    name = "config"
    label = "allot_config"
    verbose_name = "Allot"

    def ready(self) -> None:
        from config import auth  # noqa: F401  (connects the signal receivers)
