"""Beat: retrain the governed models, then raise/resolve stockout-risk and transfer cases."""
from celery import shared_task


@shared_task(name="allocation.insights.tasks.refresh_task")
def refresh_task() -> dict:
    from allocation.insights import services

    return services.refresh(actor="beat")
