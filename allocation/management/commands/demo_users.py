"""``manage.py demo_users``: one known login per role, for demos and training."""
from django.core.management.base import BaseCommand

from allocation.demo import ensure_demo_users


class Command(BaseCommand):
    help = "Create (idempotently) one demo user per role and an admin; print their logins."

    def handle(self, *args, **options) -> None:
        users, token = ensure_demo_users()
        width = max(len(user.username) for user in users)
        self.stdout.write(f"{'username':<{width}}  {'password':<10}  role")
        for user in users:
            note = "" if user.created else "  (existed; password reset)"
            self.stdout.write(f"{user.username:<{width}}  {user.password:<10}  {user.role}{note}")
        self.stdout.write(f"API token for integration: {token}")
