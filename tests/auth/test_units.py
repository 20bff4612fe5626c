"""Pure parts: SMART scopes, credentials and sealing, passwords, throttle buckets."""

from __future__ import annotations

import pytest

from auth.credentials import digest, digest_matches, new_credential, seal, unseal
from auth.passwords import hash_password, needs_rehash, password_problems, verify_password
from auth.scopes import (
    SECTION_RESOURCES,
    SmartScope,
    all_covered,
    grants,
    is_valid_scope,
    required_scope,
    resource_name,
    trim_for_role,
)
from auth.throttle import address_bucket
from consent.policy_types import SECTIONS


def test_every_section_has_a_fhir_resource():
    assert set(SECTION_RESOURCES) == SECTIONS
    for section in SECTIONS:
        assert resource_name(section) == SECTION_RESOURCES[section]


@pytest.mark.parametrize(("scope", "valid"), [
    ("openid", True), ("offline_access", True), ("patient/*.rs", True),
    ("user/*.cruds", True), ("system/Immunization.cr", True), ("patient/Immunization.r", True),
    ("patient/Immunization.rc", False), ("patient/Immunization.read", False),
    ("patient/immunization.r", False), ("practitioner/*.r", False), ("patient/*.", False),
    ("patient/Foo.r", False), ("email", False), ("", False),
])
def test_scope_grammar(scope, valid):
    assert is_valid_scope(scope) is valid


def test_coverage():
    assert SmartScope.parse("patient/*.cruds").covers(SmartScope.parse("patient/Condition.rs"))
    assert not SmartScope.parse("patient/*.rs").covers(SmartScope.parse("patient/Condition.c"))
    assert not SmartScope.parse("user/*.cruds").covers(SmartScope.parse("patient/Condition.r"))
    assert all_covered(["openid", "patient/Immunization.r"], ["openid", "patient/*.rs"])
    assert not all_covered(["profile"], ["openid", "patient/*.rs"])
    assert grants(["patient/*.r"], context="patient", resource="summary", interaction="r")
    assert not grants(["patient/Immunization.rs"], context="patient", resource="summary",
                      interaction="r")
    assert required_scope(context="user", resource="lab-results", interaction="rs") == (
        "user/DiagnosticReport.rs"
    )
    with pytest.raises(ValueError, match="interaction"):
        grants(["patient/*.r"], context="patient", resource="Condition", interaction="x")
    with pytest.raises(ValueError, match="unknown resource"):
        resource_name("nonsense")


def test_trim_for_role():
    asked = ["openid", "offline_access", "patient/*.rs", "user/*.rs", "system/*.r"]
    assert trim_for_role(asked, role="citizen") == ["openid", "offline_access", "patient/*.rs"]
    assert trim_for_role(asked, role="practitioner") == ["openid", "offline_access",
                                                         "user/*.rs"]
    assert trim_for_role(asked, role="admin") == ["openid", "offline_access"]
    assert trim_for_role(asked, role="station", client_credentials=True) == ["system/*.r"]


def test_credentials_and_seals():
    token = new_credential("phr_at_")
    assert token.startswith("phr_at_")
    assert len(token) == len("phr_at_") + 43
    assert digest_matches(token, digest(token))
    assert not digest_matches(token + "x", digest(token))
    assert not digest_matches(token, None)
    sealed = seal(token, b"payload", context=b"ctx")
    assert unseal(token, sealed, context=b"ctx") == b"payload"
    assert unseal(token + "x", sealed, context=b"ctx") is None
    assert unseal(token, sealed, context=b"other") is None
    assert unseal(token, sealed[:-1] + bytes([sealed[-1] ^ 1]), context=b"ctx") is None
    assert b"payload" not in sealed


def test_passwords():
    stored = hash_password("Mật khẩu tiếng Việt")
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, "Mật khẩu tiếng Việt")
    # The same letters typed decomposed (NFD) still match.
    import unicodedata

    assert verify_password(stored, unicodedata.normalize("NFD", "Mật khẩu tiếng Việt"))
    assert not verify_password(stored, "mật khẩu tiếng việt")
    assert not verify_password("not a hash", "x")
    assert not needs_rehash(stored)
    assert password_problems("short") == ["account.password.too-short"]
    assert password_problems("bs.nguyen", username="BS.Nguyen") == [
        "account.password.same-as-username"
    ]


def test_address_buckets():
    assert address_bucket("203.0.113.7") == "203.0.113.7"
    assert address_bucket("2001:db8:1:2:3:4:5:6") == address_bucket("2001:db8:1:2::9")
    assert address_bucket("::ffff:203.0.113.7") == "203.0.113.7"
    assert address_bucket(None) == address_bucket("garbage") == "unknown"
