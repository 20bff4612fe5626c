"""Fixtures of the auth tests."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.auth import MovableClock, install_clock


@pytest.fixture
def clock(app: Any) -> MovableClock:
    return install_clock(app)
