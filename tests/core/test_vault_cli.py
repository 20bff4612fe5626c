"""`flask vault ...`: one JSON line on stdout per command, exit 1 when something failed."""

from __future__ import annotations

import datetime as dt
import json
import secrets
import uuid

import pytest
from sqlalchemy import select

from core.db import db
from core.encryption import ERASED, KEY_ACTIVE, KEY_RETIRED, DataKey, VaultSettings
from core.vault.kek import LocalKeyFileKekProvider
from registry.models import Citizen
from registry.reference.health_id import make_health_id
from registry.services import register_citizen
from tests.conftest import LOG_FILE

FIELDS_PER_CITIZEN = 9  # every personal field is filled below


@pytest.fixture
def key_file(app, tmp_path):
    """A key file of this test's own: rotations must not touch the run's KEKs."""
    path = tmp_path / "kek.json"
    LocalKeyFileKekProvider.generate(path)
    current = app.extensions["phr.vault"]
    app.extensions["phr.vault"] = VaultSettings(
        provider=LocalKeyFileKekProvider(path), blind_index_key=current.blind_index_key)
    return path


@pytest.fixture
def citizens(app) -> list[uuid.UUID]:
    with app.app_context():
        created = []
        for index, name in enumerate(("Bùi Thị Ngọc Hân", "Đinh Công Tráng", "Lý Thị Xuân")):
            born = dt.date(1970 + index, 3, 8)
            created.append(register_citizen(
                session=db.session, full_name=name, date_of_birth=born, sex="female",
                health_id=make_health_id(province_code="079", date_of_birth=born, sex="female",
                                         serial=secrets.randbelow(999_999)),
                phone=f"03{secrets.randbelow(10**8):08d}", email=f"cli{index}@example.vn",
                address={"province_code": "79", "line": "Hẻm 12 Nguyễn Trãi"},
                ethnicity="Hoa", social_insurance_code=f"{secrets.randbelow(10**10):010d}",
            ).id)
        db.session.commit()
        db.session.remove()
        return created


def run(app, *args: str, input: str | None = None):
    result = app.test_cli_runner().invoke(args=["vault", *args], input=input)
    return result


def json_line(result) -> dict:
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout
    return json.loads(lines[0])


def tamper(app, citizens) -> None:
    with app.app_context():
        first, second = citizens[:2]
        stolen = db.session.scalar(select(Citizen.email_ct).where(Citizen.id == first))
        db.session.execute(Citizen.__table__.update().where(Citizen.__table__.c.id == second)
                           .values(email_ct=stolen))
        db.session.commit()


def test_verify_prints_one_json_line_and_exits_0(app, citizens):
    result = run(app, "verify", "--batch-size", "2")
    assert result.exit_code == 0, result.output
    assert json_line(result) == {"checked": 3 * FIELDS_PER_CITIZEN, "failed": 0, "erased": 0}


def test_verify_exits_1_on_any_failure(app, citizens):
    tamper(app, citizens)
    result = run(app, "verify")
    assert result.exit_code == 1
    assert json_line(result) == {"checked": 3 * FIELDS_PER_CITIZEN, "failed": 1, "erased": 0}


def test_verify_on_an_empty_database(app):
    result = run(app, "verify")
    assert (result.exit_code, json_line(result)) == (0, {"checked": 0, "failed": 0, "erased": 0})


def test_rotate_kek_with_retire_old(app, key_file, citizens):
    old_kek = json.loads(key_file.read_text())["active"]
    result = run(app, "rotate-kek", "--retire-old", "--grace-seconds", "0")
    assert result.exit_code == 0, result.output
    report = json_line(result)
    document = json.loads(key_file.read_text())
    assert report == {"active_kek": document["active"], "added": True, "rewrapped": 3,
                      "failed": 0, "remaining": 0, "retired": [old_kek], "done": True}
    assert list(document["keys"]) == [document["active"]]
    assert json_line(run(app, "verify")) == {"checked": 3 * FIELDS_PER_CITIZEN, "failed": 0,
                                             "erased": 0}


def test_rotate_kek_refuses_to_retire_keks_held_inline(app, citizens):
    from core.vault.kek import InMemoryKekProvider

    current = app.extensions["phr.vault"]
    app.extensions["phr.vault"] = VaultSettings(
        provider=InMemoryKekProvider.generate(), blind_index_key=current.blind_index_key)
    result = run(app, "rotate-kek", "--retire-old")
    assert result.exit_code == 1
    assert "read-only" in result.output


def test_rotate_data_keys_for_everyone(app, citizens):
    result = run(app, "rotate-data-keys", "--batch-size", "2")
    assert result.exit_code == 0, result.output
    assert json_line(result) == {
        "resumed": False, "started": 3, "reencrypted": 3 * FIELDS_PER_CITIZEN, "deferred": 0,
        "failed": 0, "retired": 3, "done": True}
    with app.app_context():
        statuses = sorted(db.session.scalars(select(DataKey.status)))
    assert statuses == [KEY_ACTIVE] * 3 + [KEY_RETIRED] * 3
    assert json_line(run(app, "verify"))["failed"] == 0


def test_rotate_data_keys_for_one_citizen(app, citizens):
    result = run(app, "rotate-data-keys", "--citizen", str(citizens[1]))
    assert result.exit_code == 0, result.output
    assert json_line(result)["started"] == 1
    with app.app_context():
        retired = db.session.scalars(select(DataKey.citizen_id).where(
            DataKey.status == KEY_RETIRED)).all()
    assert retired == [citizens[1]]


def test_rotate_data_keys_exits_1_when_a_field_cannot_be_read(app, citizens):
    tamper(app, citizens)
    result = run(app, "rotate-data-keys")
    assert result.exit_code == 1
    assert json_line(result)["failed"] == 1


def test_unknown_citizen_is_an_error(app, citizens):
    for command in (["rotate-data-keys"], ["shred", "--yes"]):
        result = run(app, *command, "--citizen", str(uuid.uuid4()))
        assert result.exit_code == 1
        assert "no data keys" in result.output


def test_shred_asks_for_confirmation(app, citizens):
    result = run(app, "shred", "--citizen", str(citizens[0]), input="n\n")
    assert result.exit_code == 1
    with app.app_context():
        assert db.session.get(Citizen, citizens[0]).full_name == "Bùi Thị Ngọc Hân"


def test_shred_erases_one_citizen_and_logs_only_the_id(app, citizens, log_stream):
    target = citizens[0]
    result = run(app, "shred", "--citizen", str(target), "--yes")
    assert result.exit_code == 0, result.output
    assert json_line(result) == {"citizen": str(target), "keys_destroyed": 1,
                                 "blind_indexes_cleared": 1}
    with app.app_context():
        assert db.session.get(Citizen, target).full_name is ERASED
        assert db.session.get(Citizen, citizens[1]).full_name == "Đinh Công Tráng"
    log_stream.flush()
    entries = [json.loads(line) for line in LOG_FILE.read_text(encoding="utf-8").splitlines()]
    shredded = [e for e in entries if e["message"] == "citizen crypto-shredded"
                and e.get("citizen_id") == str(target)]
    assert len(shredded) == 1
    assert "Bùi Thị Ngọc Hân" not in json.dumps(shredded[0], ensure_ascii=False)
    # Erased fields are the expected state, not a failure: counted as erased.
    assert json_line(run(app, "verify")) == {"checked": 3 * FIELDS_PER_CITIZEN, "failed": 0,
                                             "erased": FIELDS_PER_CITIZEN}
