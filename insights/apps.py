from django.apps import AppConfig


class InsightsConfig(AppConfig):
    """Decision support (PRODUCT.md capability 10): governed models and recommendations."""

    name = "insights"
    verbose_name = "Decision support"

    def ready(self) -> None:
        # The approval handler of transfer recommendations (kind transfer.recommendation).
        from insights import transfers  # noqa: F401
