"""Texts of the FHIR face (vi default, en by Accept-Language)."""

from __future__ import annotations

from core.i18n import register_messages

MESSAGES = {
    "problem.not-acceptable.title": {"vi": "Định dạng không được hỗ trợ",
                                     "en": "Format not acceptable"},
    "problem.not-acceptable.detail": {
        "vi": "Máy chủ FHIR chỉ trả về JSON (application/fhir+json); _format={value} không "
              "được hỗ trợ.",
        "en": "This FHIR server answers JSON only (application/fhir+json); _format={value} is "
              "not supported."},
    "fhir.patient-required": {
        "vi": "Tìm kiếm {type} cần tham số patient (mã định danh nội bộ của người bệnh).",
        "en": "A {type} search needs the patient parameter (the person's id)."},
    "fhir.invalid-reference": {
        "vi": "Tham chiếu không hợp lệ: cần Patient/<id> hoặc <id> là một UUID.",
        "en": "Not a valid reference: Patient/<id> or <id> (a UUID) is expected."},
    "fhir.unknown-parameter": {
        "vi": "Tham số tìm kiếm không được hỗ trợ cho {type}: {names}.",
        "en": "Search parameters not supported for {type}: {names}."},
    "fhir.repeated-parameter": {
        "vi": "Tham số {name} chỉ được dùng một lần.",
        "en": "The parameter {name} may be given only once."},
    "fhir.invalid-date": {
        "vi": "Giá trị ngày không hợp lệ: {value} (dùng tiền tố eq, ne, ge, gt, le, lt và ngày "
              "YYYY, YYYY-MM, YYYY-MM-DD hoặc thời điểm có múi giờ).",
        "en": "Not a valid date value: {value} (use a prefix eq, ne, ge, gt, le, lt and a date "
              "YYYY, YYYY-MM, YYYY-MM-DD or an instant with offset)."},
    "fhir.invalid-count": {
        "vi": "_count phải là số nguyên từ 1 đến {max}.",
        "en": "_count must be an integer from 1 to {max}."},
    "fhir.invalid-token": {
        "vi": "Giá trị mã không hợp lệ: {value} (dùng hệ-mã|mã hoặc mã).",
        "en": "Not a valid token: {value} (use system|code or code)."},
    "fhir.empty-search": {
        "vi": "Không có mục nào bạn được xem khớp với tìm kiếm này.",
        "en": "Nothing you may see matches this search."},
}

register_messages(MESSAGES)
