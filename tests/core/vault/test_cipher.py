"""Field encryption: format, nonce uniqueness, tamper detection, AAD binding, Unicode."""

from __future__ import annotations

import dataclasses
import pickle
import random
import sys
import unicodedata
import uuid

import pytest

from core.vault import (
    DecryptionError,
    FieldCipher,
    FieldContext,
    ciphertext_key_id,
    decrypt_field,
    decrypt_json,
    encrypt_field,
    encrypt_json,
    new_data_key,
)
from core.vault.cipher import HEADER_LENGTH, MIN_CIPHERTEXT_LENGTH

NAME_NFC = unicodedata.normalize("NFC", "Nguyễn Thị Ánh Tuyết")
NAME_NFD = unicodedata.normalize("NFD", NAME_NFC)


def test_round_trip_and_layout(data_key: bytes, key_id: uuid.UUID, context: FieldContext) -> None:
    ciphertext = encrypt_field(
        data_key=data_key, key_id=key_id, plaintext="Lê Văn Tám", aad=context
    )

    assert ciphertext[0] == 0x01
    assert ciphertext[1:HEADER_LENGTH] == key_id.bytes
    assert ciphertext_key_id(ciphertext) == key_id
    assert decrypt_field(data_key=data_key, ciphertext=ciphertext, aad=context) == "Lê Văn Tám"


def test_accepts_memoryview_and_bytearray(cipher: FieldCipher, context: FieldContext) -> None:
    ciphertext = cipher.encrypt_field("0912345678", aad=context)

    assert cipher.decrypt_field(memoryview(ciphertext), aad=context) == "0912345678"
    assert cipher.decrypt_field(bytearray(ciphertext), aad=context) == "0912345678"


def test_padding_hides_short_value_lengths(cipher: FieldCipher, context: FieldContext) -> None:
    lengths = {len(cipher.encrypt_field(value, aad=context)) for value in ("", "male", "female")}

    assert lengths == {MIN_CIPHERTEXT_LENGTH}


@pytest.mark.slow
def test_million_encryptions_never_repeat_a_nonce_or_ciphertext(
    cipher: FieldCipher, context: FieldContext
) -> None:
    count = 1_000_000
    nonces: set[bytes] = set()
    ciphertexts: set[bytes] = set()
    encrypt = cipher.encrypt_field
    for _ in range(count):
        ciphertext = encrypt("Nguyễn Văn An", aad=context)
        nonces.add(ciphertext[HEADER_LENGTH : HEADER_LENGTH + 12])
        ciphertexts.add(ciphertext)

    assert len(nonces) == count
    assert len(ciphertexts) == count


def test_every_bit_flip_is_detected(
    data_key: bytes, key_id: uuid.UUID, context: FieldContext
) -> None:
    ciphertext = encrypt_field(data_key=data_key, key_id=key_id, plaintext="A", aad=context)
    assert len(ciphertext) == MIN_CIPHERTEXT_LENGTH  # header, key id, nonce, one block, tag

    for bit in range(len(ciphertext) * 8):
        tampered = bytearray(ciphertext)
        tampered[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(DecryptionError):
            decrypt_field(data_key=data_key, ciphertext=bytes(tampered), aad=context)


def test_truncated_and_extended_ciphertexts_fail(
    cipher: FieldCipher, context: FieldContext
) -> None:
    ciphertext = cipher.encrypt_field("Hà Nội", aad=context)

    for broken in (b"", ciphertext[:1], ciphertext[:-1], ciphertext[: MIN_CIPHERTEXT_LENGTH - 1]):
        with pytest.raises(DecryptionError):
            cipher.decrypt_field(broken, aad=context)
    with pytest.raises(DecryptionError):
        cipher.decrypt_field(ciphertext + b"\x00", aad=context)


@pytest.mark.parametrize(
    "change",
    [
        {"row_id": "5d1c0e0e-1111-4222-8333-444455556666"},
        {"column": "address"},
        {"table": "practitioners"},
        {"citizen_id": "9e8d7c6b-5a49-4838-a726-150493827160"},
    ],
    ids=["row", "column", "table", "citizen"],
)
def test_value_copied_to_other_coordinates_fails(
    cipher: FieldCipher, context: FieldContext, change: dict[str, str]
) -> None:
    ciphertext = cipher.encrypt_field("Trần Thị Bình", aad=context)
    elsewhere = dataclasses.replace(context, **change)

    with pytest.raises(DecryptionError) as excinfo:
        cipher.decrypt_field(ciphertext, aad=elsewhere)

    error = excinfo.value
    assert (error.table, error.column, error.row_id) == (
        elsewhere.table,
        elsewhere.column,
        elsewhere.row_id,
    )
    assert error.key_id == cipher.key_id


def test_swapping_ciphertexts_between_two_rows_fails_both_ways(
    cipher: FieldCipher, context: FieldContext
) -> None:
    other = dataclasses.replace(context, row_id="other-row", citizen_id="other-citizen")
    mine = cipher.encrypt_field("Phạm Minh Chính", aad=context)
    theirs = cipher.encrypt_field("Võ Thị Sáu", aad=other)

    with pytest.raises(DecryptionError):
        cipher.decrypt_field(theirs, aad=context)
    with pytest.raises(DecryptionError):
        cipher.decrypt_field(mine, aad=other)


def test_context_encoding_is_unambiguous() -> None:
    first = FieldContext(table="a|b", column="c", row_id="r", citizen_id="p")
    second = FieldContext(table="a", column="b|c", row_id="r", citizen_id="p")
    third = FieldContext(table="a", column="bc", row_id="r", citizen_id="p")
    fourth = FieldContext(table="ab", column="c", row_id="r", citizen_id="p")

    encodings = {ctx.encoded for ctx in (first, second, third, fourth)}

    assert len(encodings) == 4


def test_context_rejects_empty_and_non_str_parts() -> None:
    with pytest.raises(ValueError, match="row_id"):
        FieldContext(table="citizens", column="name", row_id="", citizen_id="c")
    with pytest.raises(TypeError, match="citizen_id"):
        FieldContext(table="citizens", column="name", row_id="r", citizen_id=uuid.uuid4())  # type: ignore[arg-type]


def test_wrong_key_fails(key_id: uuid.UUID, context: FieldContext) -> None:
    ciphertext = encrypt_field(data_key=new_data_key(), key_id=key_id, plaintext="x", aad=context)

    with pytest.raises(DecryptionError, match="authentication failed"):
        decrypt_field(data_key=new_data_key(), ciphertext=ciphertext, aad=context)


def test_cipher_refuses_ciphertext_of_another_key(
    cipher: FieldCipher, context: FieldContext
) -> None:
    other = FieldCipher(key_id=uuid.uuid4(), data_key=new_data_key())
    ciphertext = other.encrypt_field("x", aad=context)

    with pytest.raises(DecryptionError, match="another data key") as excinfo:
        cipher.decrypt_field(ciphertext, aad=context)
    assert excinfo.value.key_id == other.key_id


def test_unknown_format_version_fails(cipher: FieldCipher, context: FieldContext) -> None:
    ciphertext = bytearray(cipher.encrypt_field("x", aad=context))
    ciphertext[0] = 0x02

    with pytest.raises(DecryptionError, match="unsupported format version"):
        ciphertext_key_id(bytes(ciphertext), aad=context)


def test_error_names_coordinates_but_no_plaintext_or_ciphertext(
    cipher: FieldCipher, context: FieldContext
) -> None:
    secret = "HIV dương tính"
    ciphertext = cipher.encrypt_field(secret, aad=context)
    tampered = ciphertext[:-1] + bytes([ciphertext[-1] ^ 1])

    with pytest.raises(DecryptionError) as excinfo:
        cipher.decrypt_field(tampered, aad=context)

    message = str(excinfo.value)
    assert context.table in message
    assert context.column in message
    assert context.row_id in message
    assert str(cipher.key_id) in message
    assert secret not in message
    assert tampered.hex() not in message
    assert repr(tampered) not in message
    assert excinfo.value.__cause__ is None
    assert excinfo.value.__suppress_context__


def test_nfc_and_nfd_inputs_decrypt_to_the_same_nfc(
    cipher: FieldCipher, context: FieldContext
) -> None:
    assert NAME_NFC != NAME_NFD

    from_nfc = cipher.decrypt_field(cipher.encrypt_field(NAME_NFC, aad=context), aad=context)
    from_nfd = cipher.decrypt_field(cipher.encrypt_field(NAME_NFD, aad=context), aad=context)

    assert from_nfc == from_nfd == NAME_NFC


@pytest.mark.parametrize(
    "text",
    [
        "Đặng Thị Ngọc Hân",
        "Ưng Hoàng Phúc",
        "Quận Hoàn Kiếm, Thành phố Hà Nội",
        "Kinh",
        "Ê-đê",
        "Xơ Đăng",
        "ỹỷỵỳý ƯỨỪỬỮỰ",
        "",
        "emoji 🩺 and\nnew line\x00nul",
    ],
)
def test_vietnamese_text_round_trips(cipher: FieldCipher, context: FieldContext, text: str) -> None:
    ciphertext = cipher.encrypt_field(text, aad=context)

    assert cipher.decrypt_field(ciphertext, aad=context) == unicodedata.normalize("NFC", text)


def test_json_round_trip_normalises_strings(
    data_key: bytes, key_id: uuid.UUID, context: FieldContext
) -> None:
    value = {NAME_NFD: [NAME_NFD, 1, 2.5, None, True], "nested": {"địa chỉ": "Huế"}}

    ciphertext = encrypt_json(data_key=data_key, key_id=key_id, value=value, aad=context)
    decrypted = decrypt_json(data_key=data_key, ciphertext=ciphertext, aad=context)

    assert decrypted == {NAME_NFC: [NAME_NFC, 1, 2.5, None, True], "nested": {"địa chỉ": "Huế"}}
    assert (
        decrypt_json(
            data_key=data_key,
            ciphertext=encrypt_json(data_key=data_key, key_id=key_id, value=[], aad=context),
            aad=context,
        )
        == []
    )


def test_json_binding_and_tamper_detection(cipher: FieldCipher, context: FieldContext) -> None:
    ciphertext = cipher.encrypt_json({"allergy": "penicillin"}, aad=context)

    with pytest.raises(DecryptionError):
        cipher.decrypt_json(ciphertext, aad=dataclasses.replace(context, column="other"))
    with pytest.raises(DecryptionError):
        cipher.decrypt_json(ciphertext[:-2] + b"\x00\x00", aad=context)


def test_json_rejects_scalars_and_colliding_keys(
    cipher: FieldCipher, context: FieldContext
) -> None:
    with pytest.raises(TypeError):
        cipher.encrypt_json("just a string", aad=context)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="NFC"):
        cipher.encrypt_json({NAME_NFC: 1, NAME_NFD: 2}, aad=context)
    with pytest.raises(ValueError, match="JSON compliant"):
        cipher.encrypt_json({"weight": float("nan")}, aad=context)


def test_decrypt_json_of_plain_text_field_fails_cleanly(
    cipher: FieldCipher, context: FieldContext
) -> None:
    for text in ("not json", '"a scalar"'):
        ciphertext = cipher.encrypt_field(text, aad=context)
        with pytest.raises(DecryptionError, match="JSON"):
            cipher.decrypt_json(ciphertext, aad=context)


def test_encrypt_rejects_bad_inputs(data_key: bytes, context: FieldContext) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        FieldCipher(key_id=uuid.uuid4(), data_key=data_key[:16])
    with pytest.raises(TypeError):
        FieldCipher(key_id=str(uuid.uuid4()), data_key=data_key)  # type: ignore[arg-type]
    cipher = FieldCipher(key_id=uuid.uuid4(), data_key=data_key)
    with pytest.raises(TypeError):
        cipher.encrypt_field(b"bytes", aad=context)  # type: ignore[arg-type]
    with pytest.raises(UnicodeEncodeError):
        cipher.encrypt_field("lone surrogate \ud800", aad=context)


def test_repr_never_shows_key_material(data_key: bytes, key_id: uuid.UUID) -> None:
    cipher = FieldCipher(key_id=key_id, data_key=data_key)

    assert data_key.hex() not in repr(cipher)
    assert repr(data_key) not in repr(cipher)
    with pytest.raises(TypeError, match="pickled"):
        pickle.dumps(cipher)


def _random_text(rng: random.Random) -> str:
    # Mix ASCII, Vietnamese letters, combining marks and astral characters; skip surrogates.
    pools = [
        (0x20, 0x7E),
        (0xC0, 0x1B0),
        (0x1EA0, 0x1EF9),
        (0x300, 0x323),
        (0x4E00, 0x4FFF),
        (0x1F300, 0x1F64F),
        (0x0, sys.maxunicode),
    ]
    chars = []
    for _ in range(rng.randint(0, 40)):
        low, high = rng.choice(pools)
        code_point = rng.randint(low, high)
        while 0xD800 <= code_point <= 0xDFFF:
            code_point = rng.randint(low, high)
        chars.append(chr(code_point))
    return "".join(chars)


def test_property_decrypt_of_encrypt_is_nfc(cipher: FieldCipher, context: FieldContext) -> None:
    rng = random.Random(5316)
    for _ in range(3000):
        text = _random_text(rng)
        ciphertext = cipher.encrypt_field(text, aad=context)
        assert cipher.decrypt_field(ciphertext, aad=context) == unicodedata.normalize("NFC", text)
        assert len(ciphertext) % 16 == (MIN_CIPHERTEXT_LENGTH % 16)
