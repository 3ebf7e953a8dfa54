"""``python manage.py export_allocations``: every allocation as JSON Lines on stdout.

One object a line: ``{order, line, sku, location, quantity, confirmed_date, supply_ref, state}``
with the quantity as a normalised decimal string ("60", "2.5"), ordered by order, line, id.
"""
from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from allocation.models import Allocation
from allocation.persistence import decimal_text


class Command(BaseCommand):
    help = "Export every allocation as JSON Lines to stdout."

    def handle(self, *args, **options) -> None:
        rows = (
            Allocation.objects.order_by("line__order__number", "line__line", "id")
            .values_list(
                "line__order__number", "line__line", "item__sku", "location__code", "quantity", "confirmed_date",
                "supply__ref", "state",
            )
            .iterator(chunk_size=5000)
        )
        for order, line, sku, location, quantity, confirmed, ref, state in rows:
            self.stdout.write(
                json.dumps(
                    {
                        "order": order,
                        "line": line,
                        "sku": sku,
                        "location": location,
                        "quantity": decimal_text(quantity),
                        "confirmed_date": confirmed.isoformat(),
                        "supply_ref": ref,
                        "state": state,
                    },
                    separators=(",", ":"),
                )
            )
