"""Shared fixtures for the vault tests: a data key, its id and a field context."""

from __future__ import annotations

import uuid

import pytest

from core.vault import FieldCipher, FieldContext, new_data_key


@pytest.fixture
def data_key() -> bytes:
    return new_data_key()


@pytest.fixture
def key_id() -> uuid.UUID:
    return uuid.uuid4()


@pytest.fixture
def cipher(data_key: bytes, key_id: uuid.UUID) -> FieldCipher:
    return FieldCipher(key_id=key_id, data_key=data_key)


@pytest.fixture
def context() -> FieldContext:
    return FieldContext(
        table="citizens",
        column="full_name",
        row_id="0b7f4a52-6d1e-4a8e-9d5c-3f2a1b0c9d8e",
        citizen_id="0b7f4a52-6d1e-4a8e-9d5c-3f2a1b0c9d8e",
    )
