"""``python manage.py models [--json] [--no-train]``: train/refresh the governed models and print them."""
from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from allocation.insights import services
from allocation.models import ModelVersion


class Command(BaseCommand):
    help = "Train the decision-support models (backtest, judge, score open supply), raise their cases, print them."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print the models as JSON.")
        parser.add_argument("--no-train", action="store_true", help="Only print the latest version of each model.")

    def handle(self, *args, **options):
        if options["no_train"]:
            names = sorted(set(ModelVersion.objects.values_list("name", flat=True)))
            latest = [ModelVersion.objects.filter(name=n).order_by("-version").first() for n in names]
            report = {"models": [services.model_json(v) for v in latest]}
        else:
            outcome = services.refresh(actor="command")
            report = {
                "models": [outcome["model"]], "stockout_risk": outcome["stockout_risk"],
                "transfers": outcome["transfers"], "expedites": outcome["expedites"], "seconds": outcome["seconds"],
            }
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2, default=str))
            return
        for model in report["models"]:
            quality = model["quality"]
            self.stdout.write(
                f"{model['name']} v{model['version']}: {model['status']} - {model['reason']}\n"
                f"  rows {model['training_rows']} (held out {model['holdout_rows']}), Brier {quality.get('brier')} "
                f"(sent confidence {quality.get('baseline_brier')}), MAE {quality.get('mae_days')} days, "
                f"fit {model['fit_seconds']} s, {model['estimates_used']}/{model['estimates']} open supplies use it"
            )
        if "stockout_risk" in report:
            self.stdout.write(
                f"stockout risk: {report['stockout_risk']}\ntransfers: {report['transfers']}\nexpedites: {report['expedites']}"
            )
