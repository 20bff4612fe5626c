"""The vault on a real database: tampering fails loudly, rotations keep every field readable,
interrupted rotations resume, shredding erases one citizen and nobody else."""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import uuid

import pytest
from flask import Blueprint
from sqlalchemy import event, select, text

from core import vault_admin
from core.db import db
from core.encryption import (
    ERASED,
    KEY_ACTIVE,
    KEY_DESTROYED,
    KEY_RETIRED,
    KEY_ROTATING,
    DataKey,
    VaultSettings,
    vault_settings,
)
from core.vault.cipher import ciphertext_key_id
from core.vault.errors import DecryptionError, KeyDestroyedError, VaultError
from core.vault.kek import InMemoryKekProvider, LocalKeyFileKekProvider
from registry.models import Citizen
from registry.reference.health_id import make_health_id
from registry.services import find_citizen_by_health_id, register_citizen
from tests.conftest import LOG_FILE

PERSONAL_FIELDS = ("health_id", "social_insurance_code", "full_name", "date_of_birth", "sex",
                   "phone", "email", "address", "ethnicity")
NAMES = ("Nguyễn Thị Ánh Tuyết", "Trần Văn Hùng", "Lê Thị Thu Hằng", "Phạm Đức Mạnh",
         "Võ Thị Diễm Kiều")


def _citizen_values(index: int) -> dict:
    born = dt.date(1950 + index * 7, 1 + index, 10 + index)
    sex = "female" if index % 2 == 0 else "male"
    return {
        "health_id": make_health_id(province_code="001", date_of_birth=born, sex=sex,
                                    serial=secrets.randbelow(999_999)),
        "full_name": NAMES[index],
        "date_of_birth": born,
        "sex": sex,
        "phone": f"09{secrets.randbelow(10**8):08d}",
        "email": f"nguoi.{index}.{secrets.token_hex(3)}@example.vn",
        "address": {"province_code": "01", "commune_code": "00070",
                    "line": f"Số {index + 3} ngõ Văn Chương"},
        "ethnicity": "Kinh",
        "social_insurance_code": f"{secrets.randbelow(10**10):010d}",
    }


def register(count: int) -> list[tuple[uuid.UUID, dict]]:
    """Register citizens and commit; returns their ids and the values as read back."""
    created = []
    for index in range(count):
        citizen = register_citizen(session=db.session, **_citizen_values(index))
        created.append(citizen)
    db.session.commit()
    people = [(c.id, {f: getattr(c, f) for f in PERSONAL_FIELDS}) for c in created]
    db.session.remove()
    return people


def fresh(citizen_id: uuid.UUID) -> Citizen:
    """The citizen loaded by a new session (new key ring: nothing cached from before)."""
    db.session.remove()
    return db.session.get(Citizen, citizen_id)


def assert_readable(people: list[tuple[uuid.UUID, dict]]) -> None:
    for citizen_id, expected in people:
        citizen = fresh(citizen_id)
        assert {f: getattr(citizen, f) for f in PERSONAL_FIELDS} == expected


def copy_column(*, source: uuid.UUID, target: uuid.UUID, column: str,
                target_column: str | None = None) -> None:
    """What an attacker (or a bad script) with write access to the table could do."""
    value = db.session.execute(
        select(getattr(Citizen, column)).where(Citizen.id == source)).scalar_one()
    db.session.execute(
        Citizen.__table__.update().where(Citizen.__table__.c.id == target)
        .values({target_column or column: value}))
    db.session.commit()


def keys_of(citizen_id: uuid.UUID) -> list[DataKey]:
    db.session.remove()
    return list(db.session.scalars(select(DataKey).where(DataKey.citizen_id == citizen_id)))


def settings() -> VaultSettings:
    return vault_settings()


@pytest.fixture
def key_file(app, tmp_path):
    """The app's KEKs in a key file of this test's own (rotations must not touch the run's)."""
    path = tmp_path / "kek.json"
    LocalKeyFileKekProvider.generate(path)
    current = app.extensions["phr.vault"]
    app.extensions["phr.vault"] = VaultSettings(
        provider=LocalKeyFileKekProvider(path), blind_index_key=current.blind_index_key)
    return path


@pytest.fixture
def probe(app):
    """A route that shows one citizen's full name, as any record view would."""
    bp = Blueprint("vault_probe", __name__)

    @bp.get("/_probe/citizens/<uuid:citizen_id>/full-name")
    def full_name(citizen_id: uuid.UUID):
        return {"full_name": str(db.session.get(Citizen, citizen_id).full_name)}

    app.register_blueprint(bp)
    return app.test_client()


def _failures_metric(client) -> float:
    body = client.get("/metrics").get_data(as_text=True)
    match = re.search(
        r'^vault_decryption_failures_total\{column="full_name",table="citizens"\} (\S+)$',
        body, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def _log_lines(request_id: str, log_stream) -> list[dict]:
    log_stream.flush()
    lines = [json.loads(line) for line in LOG_FILE.read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if line.get("request_id") == request_id]


# Tampering ------------------------------------------------------------------------------------


def test_a_ciphertext_copied_to_another_row_fails_loudly(app_context):
    (a, a_values), (b, _) = register(2)
    copy_column(source=a, target=b, column="full_name_ct")
    with pytest.raises(DecryptionError) as caught:
        _ = fresh(b).full_name
    assert caught.value.row_id == str(b)
    assert caught.value.column == "full_name"
    assert a_values["full_name"] not in str(caught.value)
    assert fresh(a).full_name == a_values["full_name"]


def test_a_ciphertext_copied_to_another_column_fails_loudly(app_context):
    [(a, a_values)] = register(1)
    copy_column(source=a, target=a, column="full_name_ct", target_column="ethnicity_ct")
    citizen = fresh(a)
    with pytest.raises(DecryptionError):
        _ = citizen.ethnicity
    assert citizen.full_name == a_values["full_name"]


def test_a_flipped_bit_fails_loudly(app_context):
    [(a, _)] = register(1)
    stored = db.session.execute(select(Citizen.phone_ct).where(Citizen.id == a)).scalar_one()
    flipped = bytearray(stored)
    flipped[-1] ^= 0x01
    db.session.execute(Citizen.__table__.update().where(Citizen.__table__.c.id == a)
                       .values(phone_ct=bytes(flipped)))
    db.session.commit()
    with pytest.raises(DecryptionError):
        _ = fresh(a).phone


def test_a_missing_data_key_fails_loudly(app_context):
    (a, _), (b, b_values) = register(2)
    db.session.execute(DataKey.__table__.delete().where(DataKey.__table__.c.citizen_id == a))
    db.session.commit()
    with pytest.raises(DecryptionError) as caught:
        _ = fresh(a).full_name
    assert caught.value.reason == "KeyNotFoundError"
    assert fresh(b).full_name == b_values["full_name"]


def test_http_read_of_a_swapped_ciphertext_is_a_500_without_data(app, probe, log_stream):
    with app.app_context():
        (a, a_values), (b, b_values) = register(2)
        copy_column(source=a, target=b, column="full_name_ct")
    before = _failures_metric(probe)
    assert probe.get(f"/_probe/citizens/{a}/full-name").get_json() == {
        "full_name": a_values["full_name"]}

    response = probe.get(f"/_probe/citizens/{b}/full-name", headers={"Accept-Language": "en"})

    assert response.status_code == 500
    assert response.mimetype == "application/problem+json"
    body = response.get_json(force=True)
    assert body["type"] == "urn:phr-vn:problem:internal-error"
    raw = response.get_data(as_text=True)
    for value in (a_values["full_name"], b_values["full_name"], "full_name", "decrypt"):
        assert value not in raw
    assert _failures_metric(probe) == before + 1
    lines = _log_lines(response.headers["X-Request-ID"], log_stream)
    failure = [line for line in lines if line["message"] == "decryption failed"]
    assert len(failure) == 1
    assert failure[0]["table"] == "citizens"
    assert failure[0]["column"] == "full_name"
    assert failure[0]["row_id"] == str(b)
    for line in lines:
        assert a_values["full_name"] not in json.dumps(line, ensure_ascii=False)


def test_http_read_with_a_missing_key_is_a_500(app, probe):
    with app.app_context():
        [(a, _)] = register(1)
        db.session.execute(DataKey.__table__.delete())
        db.session.commit()
    response = probe.get(f"/_probe/citizens/{a}/full-name")
    assert response.status_code == 500
    assert response.get_json(force=True)["type"] == "urn:phr-vn:problem:internal-error"


# Crypto-shredding -----------------------------------------------------------------------------


def test_shredded_citizen_reads_as_erased_and_others_are_untouched(app_context):
    (a, a_values), (b, b_values) = register(2)
    report = vault_admin.shred(session=db.session(), citizen_id=a)
    db.session.commit()
    assert report.keys_destroyed == 1
    assert report.blind_indexes_cleared == 1

    erased = fresh(a)
    assert all(getattr(erased, f) is ERASED for f in PERSONAL_FIELDS)
    assert erased.status == "active"  # clear columns keep working
    assert find_citizen_by_health_id(session=db.session, health_id=a_values["health_id"]) is None
    raw = db.session.execute(select(
        Citizen.health_id_bidx, Citizen.phone_bidx, Citizen.social_insurance_code_bidx,
        Citizen.cohort_bidx,  # commune and birth year: no longer findable on a worklist
    ).where(Citizen.id == a)).one()
    assert tuple(raw) == (None, None, None, None)
    assert db.session.scalar(select(Citizen.cohort_bidx).where(Citizen.id == b)) is not None
    assert [(k.status, k.wrapped_key) for k in keys_of(a)] == [(KEY_DESTROYED, None)]

    assert_readable([(b, b_values)])
    assert find_citizen_by_health_id(session=db.session, health_id=b_values["health_id"]).id == b
    [(c, c_values)] = register(1)  # registering keeps working
    assert_readable([(c, c_values)])
    with pytest.raises(KeyDestroyedError):
        fresh(a).full_name = "Không còn ai"  # nothing can be written for them again


def test_shredding_takes_effect_in_the_session_that_did_it(app_context):
    [(a, a_values)] = register(1)
    citizen = db.session.get(Citizen, a)
    assert citizen.full_name == a_values["full_name"]
    vault_admin.shred(session=db.session(), citizen_id=a)
    assert citizen.full_name is ERASED
    db.session.commit()


def test_shredding_twice_changes_nothing(app_context):
    [(a, _)] = register(1)
    vault_admin.shred(session=db.session(), citizen_id=a)
    db.session.commit()
    again = vault_admin.shred(session=db.session(), citizen_id=a)
    db.session.commit()
    assert (again.keys_destroyed, again.blind_indexes_cleared) == (0, 1)


def test_a_shredded_citizens_ciphertext_on_another_row_is_tampering_not_erasure(app_context):
    (a, _), (b, _) = register(2)
    vault_admin.shred(session=db.session(), citizen_id=a)
    db.session.commit()
    copy_column(source=a, target=b, column="full_name_ct")
    with pytest.raises(DecryptionError) as caught:
        _ = fresh(b).full_name
    assert caught.value.reason == "destroyed key of another citizen"


# verify ---------------------------------------------------------------------------------------


def test_verify_counts_every_encrypted_field(app_context):
    people = register(3)
    report = vault_admin.verify(session=db.session(), settings=settings(), batch_size=2)
    assert report == vault_admin.VerifyReport(checked=3 * len(PERSONAL_FIELDS), failed=0)
    copy_column(source=people[0][0], target=people[1][0], column="sex_ct")
    report = vault_admin.verify(session=db.session(), settings=settings(), batch_size=2)
    assert report.failed == 1


def test_verify_counts_an_unwrappable_key_as_failures_of_its_fields(app_context):
    (a, _), (b, _) = register(2)
    db.session.execute(DataKey.__table__.update().where(DataKey.__table__.c.citizen_id == a)
                       .values(kek_id="kek-that-never-was"))
    db.session.commit()
    report = vault_admin.verify(session=db.session(), settings=settings())
    assert report.failed == len(PERSONAL_FIELDS)
    assert report.checked == 2 * len(PERSONAL_FIELDS)


# KEK rotation ---------------------------------------------------------------------------------


def _kek_document(path) -> dict:
    return json.loads(path.read_text())


def test_kek_rotation_with_the_old_kek_retired_keeps_every_field_readable(app_context, key_file):
    people = register(3)
    old_kek = _kek_document(key_file)["active"]
    report = vault_admin.rotate_kek(session=db.session(), settings=settings(), retire_old=True,
                                    grace_seconds=0, batch_size=2)
    document = _kek_document(key_file)
    assert report.added
    assert report.rewrapped == 3
    assert report.retired == (old_kek,)
    assert report.done
    assert list(document["keys"]) == [document["active"]] != [old_kek]
    assert {k.kek_id for k in db.session.scalars(select(DataKey))} == {document["active"]}
    assert_readable(people)
    assert vault_admin.verify(session=db.session(), settings=settings()).failed == 0


def test_kek_rotation_interrupted_is_resumed_without_downtime(app, key_file, database_url,
                                                            log_stream):
    from tests.conftest import make_app

    # Another process (a web worker) holding the same key file, loaded before the rotation.
    web = make_app(database_url, log_stream, VAULT_KEK_FILE=str(key_file))
    with app.app_context():
        people = register(3)
        first = vault_admin.rotate_kek(session=db.session(), settings=settings(), batch_size=1,
                                       max_batches=1)
        assert (first.added, first.rewrapped, first.done) == (True, 1, False)
        assert len(_kek_document(key_file)["keys"]) == 2
    with web.app_context():
        assert_readable(people)  # half rewrapped: both KEKs still in the file
        db.session.remove()
    with app.app_context():
        second = vault_admin.rotate_kek(session=db.session(), settings=settings(),
                                        retire_old=True, grace_seconds=0)
        assert (second.added, second.rewrapped, second.done) == (False, 2, True)
        assert len(second.retired) == 1
        db.session.remove()
    with web.app_context():
        assert_readable(people)  # the web worker follows the key file without a restart
        db.session.remove()
        db.engine.dispose()


def test_kek_is_not_retired_while_a_data_key_still_needs_it(app_context, key_file):
    (a, _), (b, b_values) = register(2)
    old_kek = _kek_document(key_file)["active"]
    db.session.execute(DataKey.__table__.update().where(DataKey.__table__.c.citizen_id == a)
                       .values(wrapped_key=b"\x01" + b"\x00" * 60))
    db.session.commit()
    report = vault_admin.rotate_kek(session=db.session(), settings=settings(), retire_old=True,
                                    grace_seconds=0)
    assert (report.rewrapped, report.failed, report.remaining) == (1, 1, 1)
    assert report.retired == ()
    assert not report.done
    assert old_kek in _kek_document(key_file)["keys"]
    assert_readable([(b, b_values)])


def test_kek_rotation_leaves_destroyed_keys_destroyed(app_context, key_file):
    (a, _), (b, b_values) = register(2)
    vault_admin.shred(session=db.session(), citizen_id=a)
    db.session.commit()
    report = vault_admin.rotate_kek(session=db.session(), settings=settings(), retire_old=True,
                                    grace_seconds=0)
    assert (report.rewrapped, report.done) == (1, True)
    assert [(k.status, k.wrapped_key) for k in keys_of(a)] == [(KEY_DESTROYED, None)]
    assert fresh(a).full_name is ERASED
    assert_readable([(b, b_values)])


def test_retiring_keks_of_a_read_only_source_is_refused(app_context):
    current = settings()
    read_only = VaultSettings(provider=InMemoryKekProvider.generate(),
                              blind_index_key=current.blind_index_key)
    with pytest.raises(VaultError, match="read-only"):
        vault_admin.rotate_kek(session=db.session(), settings=read_only, retire_old=True)


# Data-key rotation ----------------------------------------------------------------------------


def _assert_rotated(people) -> None:
    """Each citizen: one active key, old keys retired, every field under the active key."""
    for citizen_id, _ in people:
        keys = keys_of(citizen_id)
        active = [k.id for k in keys if k.status == KEY_ACTIVE]
        assert len(active) == 1
        assert sorted(k.status for k in keys if k.id not in active) == [KEY_RETIRED]
        row = db.session.get(Citizen, citizen_id)
        for field in PERSONAL_FIELDS:
            ciphertext = getattr(row, f"{field}_ct")
            assert ciphertext_key_id(ciphertext) == active[0]
    assert_readable(people)


def test_data_key_rotation_reencrypts_every_field(app_context):
    people = register(3)
    report = vault_admin.rotate_data_keys(session=db.session(), settings=settings(),
                                          batch_size=2)
    assert report == vault_admin.DataKeyRotationReport(
        resumed=False, started=3, reencrypted=3 * len(PERSONAL_FIELDS), deferred=0, failed=0,
        retired=3, done=True)
    _assert_rotated(people)


def test_data_key_rotation_stopped_halfway_reads_fine_and_a_rerun_finishes(app_context):
    people = register(3)
    # Begin: 2 batches; re-encrypt: the first of 2 batches, then stop.
    first = vault_admin.rotate_data_keys(session=db.session(), settings=settings(),
                                         batch_size=2, max_batches=3)
    assert (first.started, first.reencrypted, first.retired, first.done) == (
        3, 2 * len(PERSONAL_FIELDS), 0, False)
    statuses = sorted(k.status for c, _ in people for k in keys_of(c))
    assert statuses == [KEY_ACTIVE] * 3 + [KEY_ROTATING] * 3
    assert_readable(people)  # half the rows under new keys, half under old ones

    second = vault_admin.rotate_data_keys(session=db.session(), settings=settings())
    assert (second.resumed, second.started, second.reencrypted, second.retired, second.done) == (
        True, 0, len(PERSONAL_FIELDS), 3, True)
    _assert_rotated(people)


def test_data_key_rotation_crashing_mid_run_reads_fine_and_a_rerun_finishes(app_context):
    people = register(3)
    session = db.session()
    commits = []

    def crash_on_second_commit(_session):
        commits.append(1)
        if len(commits) == 2:
            raise RuntimeError("power cut")

    event.listen(session, "before_commit", crash_on_second_commit)
    try:
        with pytest.raises(RuntimeError, match="power cut"):
            vault_admin.rotate_data_keys(session=session, settings=settings(), batch_size=2)
    finally:
        event.remove(session, "before_commit", crash_on_second_commit)
        session.rollback()
    # The first batch began rotating two citizens; the third never started.
    assert sorted(k.status for c, _ in people for k in keys_of(c)) == (
        [KEY_ACTIVE] * 3 + [KEY_ROTATING] * 2)
    assert_readable(people)

    resumed = vault_admin.rotate_data_keys(session=db.session(), settings=settings(),
                                           batch_size=2)
    assert (resumed.resumed, resumed.started, resumed.done) == (True, 1, True)
    _assert_rotated(people)


def test_data_key_rotation_of_one_citizen_leaves_the_others_alone(app_context):
    people = register(3)
    (target, _), *others = people
    before = {c: [(k.id, k.status) for k in keys_of(c)] for c, _ in others}
    report = vault_admin.rotate_data_keys(session=db.session(), settings=settings(),
                                          citizen_id=target)
    assert (report.started, report.retired, report.done) == (1, 1, True)
    _assert_rotated([people[0]])
    assert {c: [(k.id, k.status) for k in keys_of(c)] for c, _ in others} == before
    assert_readable(people)


def test_data_key_rotation_skips_shredded_citizens(app_context):
    (a, _), (b, b_values) = register(2)
    vault_admin.shred(session=db.session(), citizen_id=a)
    db.session.commit()
    report = vault_admin.rotate_data_keys(session=db.session(), settings=settings())
    assert (report.started, report.done) == (1, True)
    assert [k.status for k in keys_of(a)] == [KEY_DESTROYED]
    assert fresh(a).full_name is ERASED
    _assert_rotated([(b, b_values)])


def test_data_key_rotation_reports_a_tampered_field_and_does_not_retire(app_context):
    (a, _), (b, _) = register(2)
    copy_column(source=a, target=b, column="email_ct")
    report = vault_admin.rotate_data_keys(session=db.session(), settings=settings())
    assert (report.failed, report.retired, report.done) == (1, 0, False)
    assert any(k.status == KEY_ROTATING for k in keys_of(b))


def test_rows_written_during_a_rotation_use_the_new_key(app_context):
    [(a, _)] = register(1)
    vault_admin.rotate_data_keys(session=db.session(), settings=settings(), batch_size=1,
                                 max_batches=1)
    citizen = fresh(a)
    citizen.full_name = "Đặng Thị Mỹ Duyên"
    db.session.commit()
    active = [k.id for k in keys_of(a) if k.status == KEY_ACTIVE]
    stored = db.session.execute(select(Citizen.full_name_ct).where(Citizen.id == a)).scalar_one()
    assert ciphertext_key_id(stored) == active[0]
    assert fresh(a).full_name == "Đặng Thị Mỹ Duyên"


def test_the_raw_tables_hold_no_plaintext(app_context):
    [(a, values)] = register(1)
    row = db.session.execute(text("SELECT * FROM citizens")).one()._asdict()
    dump = repr(row).encode() + b"".join(v for v in row.values() if isinstance(v, bytes))
    for field in ("full_name", "phone", "email", "health_id"):
        assert str(values[field]).encode() not in dump
