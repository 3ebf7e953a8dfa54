"""Pure allocation engine: ranks open lines and allocates supply (no Django)."""

from allocation.engine.types import *  # noqa: F401,F403
