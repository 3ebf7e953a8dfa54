"""``manage.py demo_users``: one known login per role, for demos and training."""
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management.base import BaseCommand

from allocation.demo import DEMO_SOURCES, ensure_demo_users, register_demo_sources


class Command(BaseCommand):
    help = "Create (idempotently) one demo user per role and an admin; print their logins."

    def handle(self, *args, **options) -> None:
        users, token = ensure_demo_users()
        width = max(len(user.username) for user in users)
        self.stdout.write(f"{'username':<{width}}  {'password':<10}  role")
        for user in users:
            note = "" if user.created else "  (existed; password reset)"
            self.stdout.write(f"{user.username:<{width}}  {user.password:<10}  {user.role}{note}")
        integration = User.objects.get(username="integration")
        register_demo_sources(integration_users=[integration])
        self.stdout.write(f"integration may post events for: {', '.join(DEMO_SOURCES)}")
        if settings.PRODUCTION:
            # Never in a production log: the operator asks for a token explicitly.
            self.stdout.write("API token for integration: not printed in production "
                              "(`python manage.py drf_create_token integration` creates one)")
            return
        self.stdout.write("=== secret: the integration API token (printed only in the embedded default) ===")
        self.stdout.write(f"API token for integration: {token}")
