"""Fixtures the CLI tests borrow from the rooms they drive."""

from tests.webhooks.conftest import receiver

__all__ = ["receiver"]
