"""``policy export [--version N]`` prints a version as JSON; ``policy import FILE [--activate]``."""
from __future__ import annotations

import json
import sys

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from config import jsonlimits
from policies import selectors, services
from policies.errors import NoActivePolicy, PolicyError, PolicyValidationError
from policies.models import PolicyVersion


class Command(BaseCommand):
    help = "Export or import an allocation policy document (policies-v1.md)."

    def add_arguments(self, parser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        export = sub.add_parser("export", help="Print a version's document (the active one by default).")
        export.add_argument("--version", type=int, dest="number", help="Version number to export.")
        imp = sub.add_parser("import", help="Create a draft from a document file ('-' reads stdin).")
        imp.add_argument("file")
        imp.add_argument("--activate", action="store_true", help="Activate at once (administrative activation).")
        imp.add_argument("--user", help="Record this username as the actor (default: the command line).")

    def handle(self, *args, **options) -> None:
        if options["action"] == "export":
            self._export(options.get("number"))
        else:
            self._import(options["file"], activate=options["activate"], username=options.get("user"))

    def _export(self, number: int | None) -> None:
        try:
            version = selectors.active_version() if number is None else PolicyVersion.objects.get(number=number)
        except (NoActivePolicy, PolicyVersion.DoesNotExist) as error:
            raise CommandError(f"No such policy version: {number if number is not None else 'active'}") from error
        self.stdout.write(json.dumps(selectors.export_document(version), indent=2))

    def _import(self, path: str, *, activate: bool, username: str | None) -> None:
        try:
            text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
            document = jsonlimits.parse_json(text)
        except OSError as error:
            raise CommandError(f"Cannot read {path}: {error}") from error
        except UnicodeDecodeError as error:
            raise CommandError(f"{path} is not UTF-8 text: {error}") from error
        except jsonlimits.JSONBodyError as error:  # syntax, nesting, size, over-long integers
            raise CommandError(f"{path} is not valid JSON here: {error.message}") from error
        actor = None
        if username:
            actor = get_user_model().objects.filter(username=username).first()
            if actor is None:
                raise CommandError(f"No user {username!r}.")
        try:
            version = services.import_document(document, actor=actor, activate=activate)
        except PolicyValidationError as error:
            lines = "\n".join(f"  {e['field'] or 'document'}: {e['message']}" for e in error.errors)
            raise CommandError(f"Invalid policy document, nothing imported:\n{lines}") from error
        except PolicyError as error:
            raise CommandError(error.message) from error
        self.stdout.write(f"Imported v{version.number} ({version.name}) as {version.status}.")
