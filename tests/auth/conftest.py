"""Fixtures of the auth tests."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.auth import MovableClock, install_clock


@pytest.fixture
def clock(app: Any) -> MovableClock:
    return install_clock(app)


@pytest.fixture
def client(app: Any) -> Any:
    """The test client that checks every exchange against openapi.yaml."""
    from tests.support.contract import ContractClient

    app.test_client_class = ContractClient
    return app.test_client()
