"""Shared fixtures: fresh caches per test, and the database choice for the suite."""

import pytest

from workflows_app import specs


@pytest.fixture(autouse=True)
def _fresh_caches():
    """Process caches hold rows by primary key; a rolled-back test must not leak them."""
    specs.clear()
    yield
    specs.clear()
