"""Issue 14: the export is everything held about the person (DESIGN.md §7, data-subject right).

Besides demographics, family doctor and the entries: the person's consents, guardians and
proxies, and the access log, each part as its own route shows it to the caller, and only the
parts the token's scopes cover.
"""

from __future__ import annotations

import datetime as dt
import uuid

from consent.models import Guardianship
from core.db import db, utcnow
from tests.ehr.samples import SAMPLES
from tests.support.auth import make_citizen, token_for


def _proxy(app, citizen: uuid.UUID, name: str) -> uuid.UUID:
    proxy = make_citizen(app, full_name=name, date_of_birth=dt.date(1990, 2, 3))
    with app.app_context():
        db.session.add(Guardianship(
            id=uuid.uuid4(), guardian_citizen_id=proxy, dependant_citizen_id=citizen,
            kind="proxy", relationship="relative", categories=[],
            valid_from=utcnow() - dt.timedelta(days=3), created_via="station"))
        db.session.commit()
    return proxy


def test_the_export_holds_consents_guardians_and_the_access_log(app, client, world):
    base = f"/api/v1/citizens/{world.patient}"
    created = client.post(base + "/allergies", json=SAMPLES["allergies"][0],
                          headers=world.headers("doctor"))
    assert created.status_code == 201
    granted = client.post(base + "/consents", headers=world.headers("patient"), json={
        "grantee": {"type": "practitioner", "id": str(world.other_doctor_id)},
        "sections": ["allergies"], "access": "read"})
    assert granted.status_code == 201, granted.get_json()
    assert client.get(base + "/allergies", headers=world.headers("other_doctor")).status_code \
        == 200
    proxy = _proxy(app, world.patient, "Phạm Thị Mai")

    export = client.get(base + "/export", headers=world.headers("patient"))
    assert export.status_code == 200, export.get_json()
    body = export.get_json()
    assert [c["id"] for c in body["consents"]] == [granted.get_json()["id"]]
    assert [(g["guardian"]["citizen_id"], g["kind"], g["guardian"]["full_name"])
            for g in body["guardians"]] == [(str(proxy), "proxy", "Phạm Thị Mai")]
    log = body["access_log"]
    assert any(item["section"] == "allergies" and item["decision"] == "permit"
               and item["actor"]["kind"] == "practitioner" for item in log), log
    assert sorted(body["sections_shown"]) == sorted(SAMPLES)
    assert [e["id"] for e in body["sections"]["allergies"]] == [created.get_json()["id"]]
    # Their inbox: the new allergy and the other doctor's first read were told to them.
    inbox = client.get("/api/v1/me/notifications", headers=world.headers("patient")).get_json()
    assert [n["id"] for n in body["notifications"]] == [n["id"] for n in inbox["items"]]
    assert {n["trigger"] for n in body["notifications"]} >= {"entry-created"}

    # The proxy exports the same person: the same parts, as their routes show them to a proxy.
    proxied = client.get(base + "/export", headers=token_for(client, app, citizen=proxy).headers)
    assert proxied.status_code == 200, proxied.get_json()
    assert {"consents", "guardians", "access_log"} <= set(proxied.get_json())
    assert "notifications" not in proxied.get_json()  # the person's inbox is theirs alone


def test_a_narrow_token_exports_only_what_it_may_read(app, client, world):
    base = f"/api/v1/citizens/{world.patient}"
    client.post(base + "/allergies", json=SAMPLES["allergies"][0],
                headers=world.headers("doctor"))
    narrow = token_for(client, app, login=world.patient_token.login,
                       scopes="openid patient/Patient.r patient/Immunization.rs")
    export = client.get(base + "/export", headers=narrow.headers)
    assert export.status_code == 200, export.get_json()
    body = export.get_json()
    assert body["sections_shown"] == ["immunizations"]
    assert body["sections"]["allergies"] == []
    assert not {"consents", "guardians", "access_log", "notifications"} & set(body)
