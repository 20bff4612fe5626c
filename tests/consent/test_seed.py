"""The consent part of `seed demo`: idempotent, the parent acts for the infant."""

from __future__ import annotations

import uuid

from consent import services
from consent.seed import seed_consent_demo
from core.db import db
from registry.seed import seed_demo


def test_the_demo_parent_is_guardian_of_the_infant_and_a_request_awaits_an_answer(app_context):
    identities, _ = seed_demo()
    assert seed_consent_demo(identities) == 2
    assert seed_consent_demo(identities) == 0
    roles = {c["demo_role"]: uuid.UUID(c["id"]) for c in identities["citizens"]}
    [dependant] = services.dependants_of(db.session, roles["parent"])
    assert dependant["citizen_id"] == str(roles["infant"])
    assert app_context.extensions["phr.seeders"].count(seed_consent_demo) == 1
    doctors = {p["demo_role"]: uuid.UUID(p["id"]) for p in identities["practitioners"]}
    [request] = services.list_practitioner_requests(db.session,
                                                    practitioner_id=doctors["other-doctor"])
    assert (request.citizen_id, request.status) == (roles["adult-chronic"], "pending")
