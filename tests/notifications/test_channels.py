"""Each channel against a real local peer over its real protocol."""

from __future__ import annotations

import json

from py_vapid import Vapid02

from notifications.channels.email import message_id
from notifications.channels.webpush import topic_for
from tests.notifications.conftest import browser_subscription, fcm_token, make_person
from tests.notifications.helpers import add_device, deliveries, notify, process


def test_fcm_http_v1_message(app, providers):
    person = make_person(app)
    token = fcm_token()
    add_device(app, person.id, platform="fcm", token=token)
    (notification_id,) = notify(app, subject=person.id, trigger="entry-created")

    result = process(app)

    assert result.sent == 1
    (request,) = providers.fcm.received
    assert request.path == providers.fcm.SEND_PATH
    message = request.json()["message"]
    (row,) = deliveries(app)
    assert message["token"] == token
    assert message["notification"] == {"title": "Sổ sức khỏe điện tử",
                                       "body": "Bạn có thông báo sức khỏe mới"}
    assert message["data"]["notification_id"] == str(notification_id)
    assert message["android"]["collapse_key"] == row.dedup_key
    assert message["android"]["notification"]["tag"] == row.dedup_key
    assert message["apns"]["headers"]["apns-collapse-id"] == row.dedup_key
    assert row.status == "sent"
    assert row.attempts == 1
    assert row.provider_message_id.startswith("projects/phr-test/messages/")


def test_fcm_bearer_from_a_service_account(app, providers, tmp_path):
    """The OAuth 2.0 JWT-bearer grant (RFC 7523) against the token endpoint, token cached."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    account = tmp_path / "service-account.json"
    account.write_text(json.dumps({
        "type": "service_account", "client_email": "push@phr-test.iam.gserviceaccount.com",
        "private_key_id": "k1", "token_uri": providers.fcm.token_url,
        "private_key": key.private_bytes(serialization.Encoding.PEM,
                                         serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()).decode(),
    }))
    app.extensions["phr.notifications"].settings.fcm_credentials_file = str(account)
    person = make_person(app)
    add_device(app, person.id, platform="fcm", token=fcm_token())
    notify(app, subject=person.id)
    notify(app, subject=person.id)

    assert process(app).sent == 2

    assert providers.fcm.bearer_tokens == ["Bearer fake-fcm-access-token"] * 2
    (assertion,) = providers.fcm.assertions  # fetched once, then cached
    header_b64, claims_b64, signature_b64 = assertion.split(".")

    def b64(value: str) -> bytes:
        import base64

        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))

    claims = json.loads(b64(claims_b64))
    assert claims["iss"] == "push@phr-test.iam.gserviceaccount.com"
    assert claims["aud"] == providers.fcm.token_url
    assert claims["scope"] == "https://www.googleapis.com/auth/firebase.messaging"
    key.public_key().verify(b64(signature_b64), f"{header_b64}.{claims_b64}".encode(),
                            padding.PKCS1v15(), hashes.SHA256())


def test_sms_gateway_gets_an_idempotency_key(app, providers):
    person = make_person(app, phone="0987 654 321")
    notify(app, subject=person.id, trigger="vaccination-due",
           params={"doses": ["dtp-1"], "due_date": "2025-03-12"})

    assert process(app).sent == 1

    (request,) = providers.sms.received
    (row,) = deliveries(app)
    body = request.json()
    assert body["to"] == "+84987654321"
    assert request.headers["idempotency-key"] == row.dedup_key == body["reference"]
    # A vaccination SMS says what to do (issue 15); without a known station, "the station".
    assert body["text"] == ("So suc khoe dien tu: Tre co lich tiem chung ngay 12/03/2025 tai "
                            "tram y te xa. Vui long dua tre den va mang theo so tiem chung.")
    assert row.provider_message_id == "sms-" + row.dedup_key[:12]


def test_email_over_smtp_with_a_message_id(app, providers):
    person = make_person(app, email="an.nguyen@example.vn", language="en")
    notify(app, subject=person.id, trigger="consent-expiring",
           params={"consent_id": "c1", "expires_at": "2025-03-20"})

    assert process(app).sent == 1

    (mail,) = providers.smtp.received
    (row,) = deliveries(app)
    assert mail.recipients == ["an.nguyen@example.vn"]
    assert mail.message["Message-ID"].strip() == message_id(row.dedup_key, "no-reply@phr.test")
    assert mail.message["Subject"] == "New health notification"
    body = mail.message.get_content()
    assert "https://phr.test/app" in body
    assert "sign in" in body


def test_web_push_is_encrypted_for_the_browser_and_signed_with_vapid(app, providers):
    person = make_person(app, phone=None, email=None)
    browser = browser_subscription(providers)
    add_device(app, person.id, platform="webpush", token=browser.token())
    (notification_id,) = notify(app, subject=person.id, trigger="break-glass")

    assert process(app).sent == 1

    (request,) = providers.push.received
    (row,) = deliveries(app)
    assert request.path == f"/push/{browser.name}"
    assert request.headers["content-encoding"] == "aes128gcm"
    assert request.headers["topic"] == topic_for(row.dedup_key)
    assert request.headers["urgency"] == "high"  # break-glass is urgent
    assert int(request.headers["ttl"]) > 0
    # The VAPID JWT verifies with the server's public key, for this push service's origin.
    assert Vapid02.verify(request.headers["authorization"])
    payload = browser.decrypt(request.body)
    assert payload["notification_id"] == str(notification_id)
    assert payload["title"] == "Sổ sức khỏe điện tử"
    assert payload["body"] == "Bạn có thông báo quan trọng về hồ sơ sức khỏe"
    assert row.status == "sent"


def test_vapid_key_is_generated_once_and_reused(app, vapid_key_file):
    from pathlib import Path

    channels = app.extensions["phr.notifications"].channels
    first = channels.vapid_private_key()
    assert first is not None
    assert Path(vapid_key_file).stat().st_mode & 0o777 == 0o600
    assert channels.vapid_private_key() is first
