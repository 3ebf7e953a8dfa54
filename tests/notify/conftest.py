"""The notify tests reuse the exceptions tests' small distributor (World)."""
from tests.exceptions.conftest import NOW, World, now, recorded_runs, world  # noqa: F401
