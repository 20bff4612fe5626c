"""Vietnamese phone numbers to one canonical E.164 form, so their blind indexes match."""

from __future__ import annotations

import re
import unicodedata

_SEPARATORS = re.compile(r"[\s.\-()/]")
_DIGITS = re.compile(r"[0-9]+", re.ASCII)

# The 2018-2019 conversion of 11-digit mobile numbers (Ministry of Information and
# Communications): old 3-digit network code -> new 2-digit code, last 7 digits unchanged.
# Legacy records still hold the old form; mapping it keeps lookups finding the same person.
_LEGACY_MOBILE_CODES = {
    "162": "32", "163": "33", "164": "34", "165": "35",
    "166": "36", "167": "37", "168": "38", "169": "39",  # Viettel
    "120": "70", "121": "79", "122": "77", "126": "76", "128": "78",  # MobiFone
    "123": "83", "124": "84", "125": "85", "127": "81", "129": "82",  # VinaPhone
    "186": "56", "188": "58",  # Vietnamobile
    "199": "59",  # Gmobile
}  # fmt: skip


def _is_national_number(nsn: str) -> bool:
    mobile = len(nsn) == 9 and nsn[0] in "35789"
    landline = len(nsn) == 10 and nsn[0] == "2"  # 2xx area codes since 2017
    return mobile or landline


def _modernise(nsn: str) -> str:
    if len(nsn) == 10 and nsn[:3] in _LEGACY_MOBILE_CODES:
        return _LEGACY_MOBILE_CODES[nsn[:3]] + nsn[3:]
    return nsn


def normalize_phone_vn(raw: str) -> str:
    """Return ``raw`` as E.164 (``+84912345678``); ValueError (not echoing it) when invalid.

    Accepts ``+84 912 345 678``, ``0912345678``, ``84912345678``, ``0084...``, ``+84 0912...``,
    bare 9-digit mobile numbers and legacy 11-digit mobile numbers (``0162...`` -> ``+8432...``).
    A number with another country code is returned as ``+<digits>`` after a length check.
    """
    if not isinstance(raw, str):
        raise TypeError("phone number must be str")
    text = _SEPARATORS.sub("", unicodedata.normalize("NFKC", raw))
    international: str | None = None
    if text.startswith("+"):
        international = text[1:]
    elif text.startswith("00"):
        international = text[2:]
    digits = international if international is not None else text
    if not _DIGITS.fullmatch(digits):
        raise ValueError("phone number must contain only digits and separators")
    if international is not None:
        if not international.startswith("84"):
            if not 8 <= len(international) <= 15:
                raise ValueError("international phone number has an invalid length")
            return "+" + international
        nsn = international[2:]
        # People often keep the trunk 0 after the country code: "+84 0912 345 678".
        nsn = nsn[1:] if nsn.startswith("0") else nsn
    elif text.startswith("0"):
        nsn = text[1:]
    elif text.startswith("84") and len(text) in (11, 12):
        nsn = text[2:]
    else:
        nsn = text
    nsn = _modernise(nsn)
    if not _is_national_number(nsn):
        raise ValueError("not a valid Vietnamese phone number")
    return "+84" + nsn
