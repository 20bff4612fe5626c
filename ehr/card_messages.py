"""Messages of citizen-reported doses, their verification and the vaccination card (vi/en)."""

from core.i18n import register_messages

register_messages({
    "record.already-verified": {
        "vi": "Mũi tiêm này đã được xác minh.",
        "en": "This dose has already been verified."},
})
