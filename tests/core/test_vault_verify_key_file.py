"""`flask vault verify` with a key file that does not belong with the database (issue 19: a
restore without its key file): one clear error line and exit 1, instead of every field
reported as a failure; a KEK missing for some keys only is still damage counted field by field."""

from __future__ import annotations

import base64
import json
import secrets

import pytest
from sqlalchemy import update

from core.db import db
from core.encryption import DataKey, VaultSettings
from core.vault.kek import InMemoryKekProvider, LocalKeyFileKekProvider
from tests.support.auth import make_citizen


@pytest.fixture
def people(app) -> list:
    return [make_citizen(app, full_name=name) for name in ("Mai Thị Lan", "Cao Văn Sơn")]


def use_key_file(app, path) -> None:
    current = app.extensions["phr.vault"]
    app.extensions["phr.vault"] = VaultSettings(
        provider=LocalKeyFileKekProvider(path), blind_index_key=current.blind_index_key)


def verify(app):
    return app.test_cli_runner().invoke(args=["vault", "verify"])


def test_another_services_key_file_is_named_as_the_cause(app, people, tmp_path):
    held = app.extensions["phr.vault"].provider.active_kek_id
    other = tmp_path / "other-kek.json"
    LocalKeyFileKekProvider.generate(other)
    use_key_file(app, other)
    result = verify(app)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"Error: 2 data keys are wrapped under KEK {held}, which the configured key file "
        f"({other}) does not hold: give the key file that belongs with this database "
        "(VAULT_KEK_FILE)\n")


def test_a_key_file_with_the_right_id_and_other_material_is_named_too(app, people, tmp_path):
    held = app.extensions["phr.vault"].provider.active_kek_id
    forged = tmp_path / "forged-kek.json"
    forged.write_text(json.dumps({"active": held, "keys": {
        held: base64.b64encode(secrets.token_bytes(32)).decode()}}))
    forged.chmod(0o600)
    use_key_file(app, forged)
    result = verify(app)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: the configured key file ({forged}) holds KEK {held}")
    assert "Traceback" not in result.output


def test_one_key_under_a_lost_kek_is_counted_field_by_field(app, people):
    with app.app_context():
        db.session.execute(update(DataKey).where(DataKey.citizen_id == people[0])
                           .values(kek_id="kek-lost"))
        db.session.commit()
    result = verify(app)
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["failed"] > 0
    assert report["checked"] > report["failed"]


def test_an_inline_kek_set_that_opens_the_keys_verifies(app, people):
    # The same KEKs given inline (VAULT_KEK_JSON) pass the check: it asks the provider only.
    current = app.extensions["phr.vault"]
    inline = InMemoryKekProvider.from_json(current.provider.path.read_text())
    app.extensions["phr.vault"] = VaultSettings(provider=inline,
                                                blind_index_key=current.blind_index_key)
    result = verify(app)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["failed"] == 0
