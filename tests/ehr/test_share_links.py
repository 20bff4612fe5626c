"""Sharing the summary by SMART Health Link, over HTTP with real tokens.

The recipient's side is played by a viewer written here, from the specification (base64url
payload, manifest POST, compact JWE `dir`/`A256GCM` opened with joserfc): none of the app's
code decodes what the app produced.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import logging
import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import pytest
import zxingcpp
from fhir.resources.R4B.bundle import Bundle
from joserfc import jwe
from joserfc.jwk import OctKey
from PIL import Image
from sqlalchemy import select

from core.db import db
from tests.ehr.samples import SAMPLES
from tests.support.auth import install_clock, make_citizen, token_for

PASSCODE = "hoa-sen-2468"


def _url(world: Any, citizen: uuid.UUID | None = None) -> str:
    return f"/api/v1/citizens/{citizen or world.patient}/share-links"


def _in(hours: float, start: dt.datetime | None = None) -> str:
    return ((start or dt.datetime.now(dt.UTC)) + dt.timedelta(hours=hours)).isoformat()


def _with_allergy(client: Any, world: Any) -> None:
    created = client.post(f"/api/v1/citizens/{world.patient}/allergies",
                          json=SAMPLES["allergies"][0], headers=world.headers("doctor"))
    assert created.status_code == 201, created.get_data(as_text=True)


def _share(client: Any, world: Any, headers: dict[str, str] | None = None,
           citizen: uuid.UUID | None = None, **body: Any) -> dict[str, Any]:
    body.setdefault("expires_at", _in(2))
    made = client.post(_url(world, citizen), json=body,
                       headers=headers or world.headers("patient"))
    assert made.status_code == 201, made.get_data(as_text=True)
    return made.get_json()


# --- the viewer of the test (the spec, not the app's code) --------------------------------


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def payload_of(shlink: str) -> dict[str, Any]:
    assert shlink.startswith("shlink:/")
    return json.loads(_b64url(shlink.removeprefix("shlink:/")))


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def decrypt(compact: str, key: str) -> dict[str, Any]:
    assert compact.count(".") == 4
    assert compact.split(".")[1] == ""
    opened = jwe.decrypt_compact(compact, OctKey.import_key(_b64url(key)))
    assert opened.protected == {"alg": "dir", "enc": "A256GCM", "cty": "application/fhir+json"}
    return json.loads(opened.plaintext)


def fetch_manifest(client: Any, shlink: str, *, recipient: str = "BS. Lê Văn Tâm",
                   **extra: Any) -> Any:
    payload = payload_of(shlink)
    return client.post(path_of(payload["url"]), json={"recipient": recipient, **extra})


def resolve(client: Any, shlink: str, **extra: Any) -> dict[str, Any]:
    """What a receiving application does: manifest, then each file, decrypted."""
    payload = payload_of(shlink)
    answer = fetch_manifest(client, shlink, **extra)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    (entry,) = answer.get_json()["files"]
    assert entry["contentType"] == "application/fhir+json"
    if "embedded" in entry:
        compact = entry["embedded"]
    else:
        located = client.get(path_of(entry["location"]))
        assert located.status_code == 200
        assert located.mimetype == "application/jose"
        compact = located.get_data(as_text=True)
    return decrypt(compact, payload["key"])


def _composition(bundle: dict[str, Any]) -> dict[str, Any]:
    assert bundle["resourceType"] == "Bundle"
    assert bundle["type"] == "document"
    composition = bundle["entry"][0]["resource"]
    assert composition["resourceType"] == "Composition"
    return composition


def _link_row(app: Any, link_id: str) -> Any:
    from ehr.share_models import ShareLink

    with app.app_context():
        row = db.session.get(ShareLink, uuid.UUID(link_id))
        db.session.expunge(row)
        return row


# --- tests --------------------------------------------------------------------------------


def test_the_qr_decodes_to_the_link_and_a_viewer_reads_the_summary(app, client, world):
    _with_allergy(client, world)
    made = _share(client, world, label="Cho bác sĩ tim mạch")
    shlink = made["shlink"]
    payload = payload_of(shlink)
    assert set(payload) == {"url", "key", "exp", "label"}  # no flag: neither P nor U
    assert len(payload["key"]) == 43
    assert len(_b64url(payload["key"])) == 32
    assert len(payload["url"]) <= 128
    manifest_id = payload["url"].rsplit("/", 1)[1]
    assert len(manifest_id) == 43
    assert len(_b64url(manifest_id)) == 32
    assert payload["exp"] == int(dt.datetime.fromisoformat(made["expires_at"]).timestamp())
    assert made["viewer_url"].endswith("/share/view#" + shlink)
    assert made["status"] == "active"
    assert made["flag"] == ""

    # The QR code, read as a phone's camera would read it.
    image = Image.open(io.BytesIO(base64.b64decode(made["qr"]["png_base64"])))
    (found,) = zxingcpp.read_barcodes(image)
    assert found.text == shlink
    assert found.format == zxingcpp.BarcodeFormat.QRCode
    assert str(found.ec_level) == "M"
    assert made["qr"]["svg"].lstrip().startswith("<svg")

    bundle = resolve(client, shlink)
    composition = _composition(bundle)
    assert composition["type"]["coding"][0]["code"] == "60591-5"
    allergies = next(s for s in composition["section"]
                     if s["code"]["coding"][0]["code"] == "48765-2")
    assert "Penicillin" in allergies["text"]["div"]
    Bundle.model_validate(bundle)  # a FHIR (R4B) document Bundle

    # Listing never shows the key again.
    listed = client.get(_url(world), headers=world.headers("patient"))
    assert listed.status_code == 200
    (item,) = listed.get_json()["items"]
    assert item["id"] == made["id"]
    assert item["opened_count"] == 1
    assert payload["key"] not in listed.get_data(as_text=True)
    assert "shlink" not in item


def test_each_fetch_is_in_the_citizens_access_log(app, client, world):
    made = _share(client, world)
    resolve(client, made["shlink"], recipient="Phòng khám Đa khoa Hòa Bình")
    log = client.get(f"/api/v1/citizens/{world.patient}/access-log",
                     headers=world.headers("patient", **{"Accept-Language": "en"}))
    assert log.status_code == 200
    opened = [i for i in log.get_json()["items"] if i["action"] == "open-shared"]
    assert len(opened) == 1
    assert opened[0]["section"] == "shared-summary"
    assert opened[0]["actor"]["kind"] == "recipient"
    assert "opened your shared summary" in opened[0]["text"]
    vi = client.get(f"/api/v1/citizens/{world.patient}/access-log",
                    headers=world.headers("patient"))
    (vi_item,) = [i for i in vi.get_json()["items"] if i["action"] == "open-shared"]
    assert "đã mở bản tóm tắt hồ sơ đã chia sẻ của bạn" in vi_item["text"]
    # The stated name, kept under the citizen's key, answers the access log's question.
    from ehr.share_links import recipients_of

    with app.app_context():
        names = recipients_of(db.session, [uuid.UUID(opened[0]["id"])])
    assert names == {uuid.UUID(opened[0]["id"]): "Phòng khám Đa khoa Hòa Bình"}


def test_the_access_log_names_the_recipient(app, client, world):
    made = _share(client, world)
    resolve(client, made["shlink"], recipient="Phòng khám Đa khoa Hòa Bình")
    log = client.get(f"/api/v1/citizens/{world.patient}/access-log",
                     headers=world.headers("patient", **{"Accept-Language": "en"}))
    (opened,) = [i for i in log.get_json()["items"] if i["action"] == "open-shared"]
    assert opened["text"] == "Phòng khám Đa khoa Hòa Bình opened your shared summary"


def test_a_link_ends_at_its_expiry_and_its_key_is_wiped(app, client, world):
    clock = install_clock(app)
    made = _share(client, world, expires_at=_in(1, clock.now))
    resolve(client, made["shlink"])
    clock.advance(minutes=61)
    assert fetch_manifest(client, made["shlink"]).status_code == 404
    row = _link_row(app, made["id"])
    assert row.key_ct is None
    assert row.passcode_hash is None
    fresh = token_for(client, app, login=world.patient_token.login)  # tokens age too
    (item,) = client.get(_url(world), headers=fresh.headers).get_json()["items"]
    assert item["status"] == "expired"


@pytest.mark.parametrize(("expires", "lang", "words"), [
    (25, "en", "at most 24 hours"),
    (-1, "en", "in the future"),
    (30, "vi", "tối đa 24 giờ"),
])
def test_a_link_lasts_at_most_a_day(app, client, world, expires, lang, words):
    answer = client.post(_url(world), json={"expires_at": _in(expires)},
                         headers=world.headers("patient", **{"Accept-Language": lang}))
    assert answer.status_code == 422
    assert answer.mimetype == "application/problem+json"
    assert words in answer.get_json()["errors"]["expires_at"][0]
    assert client.get(_url(world), headers=world.headers("patient")).get_json()["items"] == []


def test_bad_bodies_are_refused_and_change_nothing(app, client, world):
    for body, field in (({}, "expires_at"), ({"expires_at": _in(1), "colour": "red"}, "colour"),
                        ({"expires_at": _in(1), "passcode": "12"}, "passcode"),
                        ({"expires_at": _in(1), "label": "x" * 81}, "label"),
                        ({"expires_at": "2030-01-01T00:00:00"}, "expires_at"),
                        ({"expires_at": _in(1), "passcode": PASSCODE, "single_use": True},
                         "passcode")):
        answer = client.post(_url(world), json=body, headers=world.headers("patient"))
        assert answer.status_code == 422, body
        assert field in answer.get_json()["errors"], answer.get_json()
    assert client.get(_url(world), headers=world.headers("patient")).get_json()["items"] == []


def test_revocation_is_immediate_and_wipes_the_key(app, client, world):
    made = _share(client, world)
    revoked = client.delete(f"{_url(world)}/{made['id']}", headers=world.headers("patient"))
    assert revoked.status_code == 200
    assert revoked.get_json()["status"] == "revoked"
    assert fetch_manifest(client, made["shlink"]).status_code == 404
    row = _link_row(app, made["id"])
    assert row.key_ct is None
    assert row.revoked_at is not None
    again = client.delete(f"{_url(world)}/{made['id']}", headers=world.headers("patient"))
    assert again.status_code == 200
    assert again.get_json()["revoked_at"] == \
        revoked.get_json()["revoked_at"]
    # Someone else's link id answers as a missing one.
    other = client.delete(f"{_url(world)}/{uuid.uuid4()}", headers=world.headers("patient"))
    assert other.status_code == 404


def test_a_single_use_link_is_a_U_link_served_once(app, client, world):
    made = _share(client, world, single_use=True)
    payload = payload_of(made["shlink"])
    assert payload["flag"] == "U"
    assert "/share/u/" in payload["url"]
    url = path_of(payload["url"])
    # The spec's U flag: no manifest, the URL is the file (GET with `recipient`).
    assert client.get(url).status_code == 422  # recipient required
    got = client.get(url, query_string={"recipient": "Nhà thuốc Minh Châu"})
    assert got.status_code == 200
    assert got.mimetype == "application/jose"
    _composition(decrypt(got.get_data(as_text=True), payload["key"]))
    assert client.get(url, query_string={"recipient": "Ai đó"}).status_code == 404
    row = _link_row(app, made["id"])
    assert row.spent_at is not None
    assert row.key_ct is None
    (item,) = client.get(_url(world), headers=world.headers("patient")).get_json()["items"]
    assert item["status"] == "spent"
    assert item["opened_count"] == 1


def test_a_passcode_guards_the_link_with_a_lifetime_limit(app, client, world):
    made = _share(client, world, passcode=PASSCODE)
    payload = payload_of(made["shlink"])
    assert payload["flag"] == "P"
    missing = fetch_manifest(client, made["shlink"])
    assert missing.status_code == 401
    assert missing.get_json()["remainingAttempts"] == 9
    wrong = fetch_manifest(client, made["shlink"], passcode="000000")
    assert wrong.status_code == 401
    assert wrong.get_json()["remainingAttempts"] == 8
    # A right passcode costs nothing.
    resolve(client, made["shlink"], passcode=PASSCODE)
    remaining = [fetch_manifest(client, made["shlink"], passcode=f"nope-{n}")
                 .get_json()["remainingAttempts"] for n in range(8)]
    assert remaining == [7, 6, 5, 4, 3, 2, 1, 0]
    # Spent: even the right passcode no longer opens it, and the key is gone.
    assert fetch_manifest(client, made["shlink"], passcode=PASSCODE).status_code == 404
    row = _link_row(app, made["id"])
    assert row.locked_at is not None
    assert row.key_ct is None
    assert row.passcode_hash is None
    en = client.post(path_of(payload["url"]), json={"recipient": "x", "passcode": "1"},
                     headers={"Accept-Language": "en"})
    assert en.status_code == 404


def test_the_passcode_limit_holds_under_parallel_requests(app, client, world):
    made = _share(client, world, passcode=PASSCODE)
    path = path_of(payload_of(made["shlink"])["url"])
    start = threading.Barrier(8)

    def guess(n: int) -> tuple[int, int | None]:
        if n < 8:
            start.wait()
        answer = app.test_client().post(path, json={"recipient": "x", "passcode": f"g{n:05d}"})
        body = answer.get_json()
        return answer.status_code, body.get("remainingAttempts")

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(guess, range(40)))
    statuses = Counter(status for status, _ in results)
    assert statuses == {401: 10, 404: 30}, statuses
    assert sorted(r for s, r in results if s == 401) == list(range(10))
    assert fetch_manifest(client, made["shlink"], passcode=PASSCODE).status_code == 404


def test_a_location_is_given_when_the_file_is_too_long_to_embed(app, client, world):
    made = _share(client, world)
    answer = fetch_manifest(client, made["shlink"], embeddedLengthMax=10)
    (entry,) = answer.get_json()["files"]
    assert "embedded" not in entry
    assert "/share/f/" in entry["location"]
    bundle = resolve(client, made["shlink"], embeddedLengthMax=10)
    _composition(bundle)
    client.delete(f"{_url(world)}/{made['id']}", headers=world.headers("patient"))
    assert client.get(path_of(entry["location"])).status_code == 404
    assert client.get("/share/f/not-a-token").status_code == 404


def test_a_guardian_shares_for_a_child_and_staff_or_strangers_cannot(app, client, world):
    from consent.models import Guardianship
    from core.db import utcnow

    parent = token_for(client, app)
    with app.app_context():
        db.session.add(Guardianship(
            id=uuid.uuid4(), guardian_citizen_id=parent.login.citizen_id,
            dependant_citizen_id=world.child, kind="minor", relationship="mother",
            categories=[], valid_from=utcnow() - dt.timedelta(days=1), created_via="station"))
        db.session.commit()
    made = _share(client, world, headers=parent.headers, citizen=world.child)
    bundle = resolve(client, made["shlink"])
    patient = next(e["resource"] for e in bundle["entry"]
                   if e["resource"]["resourceType"] == "Patient")
    assert patient["id"] == str(world.child)
    # The family doctor may read the summary, but handing it on is the person's act.
    doctor = client.post(_url(world), json={"expires_at": _in(1)},
                         headers=world.headers("doctor"))
    assert doctor.status_code == 403
    assert doctor.get_json()["type"].endswith("share-citizen-only")
    stranger = client.post(_url(world), json={"expires_at": _in(1)},
                           headers=world.headers("stranger"))
    assert stranger.status_code == 404
    assert client.get(_url(world), headers=world.headers("stranger")).status_code == 404
    nobody = client.post(_url(world, make_citizen(app)), json={"expires_at": _in(1)},
                         headers=world.headers("patient"))
    assert nobody.status_code == 404


def test_neither_key_nor_passcode_reaches_a_log_line(app, client, world, caplog):
    caplog.set_level(logging.DEBUG)
    made = _share(client, world, passcode=PASSCODE, label="Đơn thuốc")
    payload = payload_of(made["shlink"])
    fetch_manifest(client, made["shlink"], passcode="sai-mat-khau")
    resolve(client, made["shlink"], passcode=PASSCODE)
    secrets_ = [payload["key"], PASSCODE, "sai-mat-khau", payload["url"].rsplit("/", 1)[1],
                made["shlink"]]
    assert caplog.records
    for record in caplog.records:
        line = json.dumps({k: str(v) for k, v in vars(record).items()}, ensure_ascii=False)
        line += record.getMessage()
        for secret in secrets_:
            assert secret not in line, (secret[:6], record.name)


def test_the_key_is_encrypted_at_rest_and_dies_with_the_citizens_key(app, client, world):
    from core.vault_admin import shred
    from ehr.share_models import ShareLink

    made = _share(client, world, label="Kết quả xét nghiệm")
    key = payload_of(made["shlink"])["key"]
    with app.app_context():
        raw = db.session.execute(select(ShareLink.key_ct, ShareLink.label_ct)).one()
        assert key.encode() not in raw.key_ct
        assert "xét".encode() not in raw.label_ct
        assert db.session.get(ShareLink, uuid.UUID(made["id"])).key == key
        shred(session=db.session, citizen_id=world.patient)
        db.session.commit()
    assert fetch_manifest(client, made["shlink"]).status_code == 404


def test_parallel_fetches_of_a_single_use_link_get_one_file(app, client, world):
    made = _share(client, world, single_use=True)
    payload = payload_of(made["shlink"])
    url = path_of(payload["url"])
    start = threading.Barrier(6)

    def fetch(n: int) -> tuple[int, str]:
        start.wait()
        got = app.test_client().get(url, query_string={"recipient": f"Người nhận {n}"})
        return got.status_code, got.get_data(as_text=True)

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(fetch, range(6)))
    served = [body for status, body in results if status == 200]
    assert len(served) == 1
    assert Counter(status for status, _ in results) == {200: 1, 404: 5}
    _composition(decrypt(served[0], payload["key"]))
    (item,) = client.get(_url(world), headers=world.headers("patient")).get_json()["items"]
    assert item["opened_count"] == 1


def test_the_purge_wipes_the_keys_of_expired_links(app, client, world):
    clock = install_clock(app)
    live = _share(client, world, expires_at=_in(3, clock.now))
    ending = _share(client, world, expires_at=_in(1, clock.now))
    clock.advance(hours=2)
    result = app.test_cli_runner().invoke(args=["share-links", "purge"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"wiped": 1}
    assert _link_row(app, ending["id"]).key_ct is None
    assert _link_row(app, live["id"]).key_ct is not None
