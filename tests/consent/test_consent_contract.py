"""openapi.yaml spells the consent vocabularies exactly as the code does."""

from __future__ import annotations

import yaml

from consent.consents import GRANT_PURPOSES
from consent.guardians import RELATIONSHIPS
from consent.models import ACCESS_LEVELS, GRANTEE_TYPES, GUARDIAN_KINDS
from consent.policy_types import GRANTABLE_TARGETS, RESTRICTED_LABELS
from tests.test_openapi_routes import SPEC_PATH


def test_consent_enumerations_mirror_the_code():
    schemas = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))["components"]["schemas"]
    assert set(schemas["GrantableSection"]["enum"]) == GRANTABLE_TARGETS
    assert set(schemas["RestrictedCategory"]["enum"]) == RESTRICTED_LABELS
    assert schemas["Relationship"]["enum"] == list(RELATIONSHIPS)
    grant = schemas["ConsentGrant"]["properties"]
    assert grant["grantee"]["properties"]["type"]["enum"] == list(GRANTEE_TYPES)
    assert grant["access"]["enum"] == list(ACCESS_LEVELS)
    assert grant["purpose"]["enum"] == list(GRANT_PURPOSES)
    assert schemas["GuardianCreate"]["properties"]["kind"]["enum"] == list(GUARDIAN_KINDS)
