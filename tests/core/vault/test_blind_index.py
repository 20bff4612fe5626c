"""Blind indexes, their key file, and Vietnamese phone normalisation."""

from __future__ import annotations

import hashlib
import hmac
import json
import stat
import unicodedata
from pathlib import Path

import pytest

from core.vault import (
    VaultError,
    blind_index,
    generate_blind_index_key,
    load_blind_index_key,
    normalize_phone_vn,
    parse_blind_index_key,
)

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


def test_deterministic_32_bytes() -> None:
    first = blind_index(key=KEY, field="citizen.health_id", value="001204012345")
    second = blind_index(key=KEY, field="citizen.health_id", value="001204012345")

    assert first == second
    assert isinstance(first, bytes)
    assert len(first) == 32


def test_differs_per_field_key_and_value() -> None:
    base = blind_index(key=KEY, field="citizen.health_id", value="001204012345")

    assert base != blind_index(key=KEY, field="citizen.social_insurance", value="001204012345")
    assert base != blind_index(key=OTHER_KEY, field="citizen.health_id", value="001204012345")
    assert base != blind_index(key=KEY, field="citizen.health_id", value="001204012346")


def test_field_and_value_boundary_is_unambiguous() -> None:
    joined_left = blind_index(key=KEY, field="ab", value="c")

    assert joined_left != blind_index(key=KEY, field="a", value="bc")


def test_is_not_a_bare_hmac_of_the_value() -> None:
    # Domain separation: the index is not HMAC(key, value), so it cannot be reused elsewhere.
    bare = hmac.digest(KEY, b"001204012345", hashlib.sha256)

    assert blind_index(key=KEY, field="citizen.health_id", value="001204012345") != bare


def test_value_normalisation_nfc_and_strip() -> None:
    nfc = unicodedata.normalize("NFC", "Nguyễn Văn An")
    nfd = unicodedata.normalize("NFD", nfc)

    expected = blind_index(key=KEY, field="name", value=nfc)

    assert blind_index(key=KEY, field="name", value=f"  {nfd}\n") == expected


def test_phone_forms_give_one_index() -> None:
    forms = [
        "+84 912 345 678",
        "0912345678",
        "84912345678",
        "0912.345.678",
        "(+84) 912-345-678",
        "0084912345678",
        "+84 0912 345 678",
        "912345678",
        "＋８４９１２３４５６７８",
    ]

    indexes = {
        blind_index(key=KEY, field="citizen.phone", value=normalize_phone_vn(form))
        for form in forms
    }

    assert len(indexes) == 1


def test_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        blind_index(key=KEY[:16], field="f", value="v")
    with pytest.raises(ValueError, match="field"):
        blind_index(key=KEY, field="", value="v")
    with pytest.raises(ValueError, match="empty"):
        blind_index(key=KEY, field="f", value="   ")
    with pytest.raises(TypeError):
        blind_index(key=KEY, field="f", value=123)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+84 912 345 678", "+84912345678"),
        ("0912345678", "+84912345678"),
        ("84912345678", "+84912345678"),
        ("0084 912 345 678", "+84912345678"),
        ("+84 0912345678", "+84912345678"),
        ("912345678", "+84912345678"),
        ("0842345678", "+84842345678"),
        ("84842345678", "+84842345678"),
        ("024 3825 1234", "+842438251234"),  # Hà Nội landline, 2xx area code
        ("+84 24 3825 1234", "+842438251234"),
        ("01629876543", "+84329876543"),  # legacy Viettel 0162 -> 032
        ("0128 787 8888", "+84787878888"),  # legacy MobiFone 0128 -> 078
        ("+84 129 822 2888", "+84828222888"),  # legacy VinaPhone 0129 -> 082
        ("0188 855 5888", "+84588555888"),  # legacy Vietnamobile 0188 -> 058
        ("0199 595 9999", "+84595959999"),  # legacy Gmobile 0199 -> 059
        ("+1 (650) 253-0000", "+16502530000"),
        ("0065 6123 4567", "+6561234567"),
    ],
)
def test_normalize_phone_vn(raw: str, expected: str) -> None:
    assert normalize_phone_vn(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "abc",
        "0912 345 67",
        "09123456789",
        "0112345678",
        "1900 1234",
        "+84 12",
        "+1 23",
        "091234567x",
        "٠٩١٢٣٤٥٦٧٨",
    ],
)
def test_normalize_phone_vn_rejects_invalid_numbers_without_echoing(raw: str) -> None:
    with pytest.raises(ValueError, match="phone number") as excinfo:
        normalize_phone_vn(raw)

    if raw:
        assert raw not in str(excinfo.value)


def test_key_file_generate_and_load(tmp_path: Path) -> None:
    path = tmp_path / "blind-index.key"

    key = generate_blind_index_key(path)

    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_blind_index_key(path) == key
    assert set(json.loads(path.read_text())) == {"key"}


def test_key_file_refuses_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "blind-index.key"
    key = generate_blind_index_key(path)

    with pytest.raises(FileExistsError):
        generate_blind_index_key(path)

    assert load_blind_index_key(path) == key


def test_key_file_errors(tmp_path: Path) -> None:
    with pytest.raises(VaultError, match="cannot be read"):
        load_blind_index_key(tmp_path / "missing.key")
    for document in ("nope", "[]", '{"key": "!!"}', '{"key": "c2hvcnQ="}', '{"other": 1}'):
        with pytest.raises(VaultError):
            parse_blind_index_key(document)
    writable = tmp_path / "writable.key"
    generate_blind_index_key(writable)
    writable.chmod(0o666)
    with pytest.raises(VaultError, match="writable"):
        load_blind_index_key(writable)
