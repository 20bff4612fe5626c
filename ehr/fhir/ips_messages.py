"""Texts of the International Patient Summary's narratives and of the FHIR operations (vi/en)."""

from core.i18n import register_messages

register_messages({
    "ips.title": {
        "vi": "Tóm tắt sức khỏe cá nhân",
        "en": "International Patient Summary"},
    "ips.custodian": {
        "vi": "Hồ sơ sức khỏe cá nhân điện tử quốc gia",
        "en": "National personal health record"},
    "ips.section.medications": {"vi": "Thuốc đang dùng", "en": "Medication summary"},
    "ips.section.allergies": {"vi": "Dị ứng", "en": "Allergies and intolerances"},
    "ips.section.problems": {"vi": "Bệnh đang theo dõi", "en": "Problem list"},
    "ips.section.immunizations": {"vi": "Tiêm chủng", "en": "Immunizations"},
    "ips.section.results": {"vi": "Kết quả xét nghiệm", "en": "Results"},
    "ips.section.vital-signs": {"vi": "Dấu hiệu sinh tồn", "en": "Vital signs"},
    # An empty section: the caller sees all of the section and there is nothing in it.
    "ips.empty.nilknown.medications": {
        "vi": "Không ghi nhận thuốc đang dùng.",
        "en": "No current medications are recorded."},
    "ips.empty.nilknown.allergies": {
        "vi": "Không ghi nhận dị ứng.",
        "en": "No allergies are recorded."},
    "ips.empty.nilknown.problems": {
        "vi": "Không ghi nhận bệnh đang theo dõi.",
        "en": "No current problems are recorded."},
    "ips.empty.nilknown.immunizations": {
        "vi": "Không ghi nhận mũi tiêm nào.",
        "en": "No immunizations are recorded."},
    "ips.empty.nilknown.results": {
        "vi": "Không ghi nhận kết quả xét nghiệm.",
        "en": "No results are recorded."},
    "ips.empty.nilknown.vital-signs": {
        "vi": "Không ghi nhận dấu hiệu sinh tồn.",
        "en": "No vital signs are recorded."},
    # The caller sees part of the section (some labels or a data period): nothing in that part,
    # which says nothing about the rest.
    "ips.empty.unavailable": {
        "vi": "Không có thông tin trong phạm vi bạn được xem.",
        "en": "No information within what you may see."},
    # The caller may not see the section at all.
    "ips.empty.withheld": {
        "vi": "Bạn không có quyền xem phần này.",
        "en": "You may not see this section."},
    "ips.since": {"vi": "từ {date}", "en": "since {date}"},
    "ips.dose": {"vi": "mũi {number}", "en": "dose {number}"},
    "ips.reaction": {"vi": "phản ứng: {reaction}", "en": "reaction: {reaction}"},
    "ips.criticality.high": {"vi": "mức độ nguy hiểm cao", "en": "high criticality"},
    "ips.recommended": {"vi": "Mũi tiêm theo lịch:", "en": "Scheduled doses:"},
    "ips.due": {"vi": "hạn {date}", "en": "due {date}"},
    "ips.interpretation.normal": {"vi": "bình thường", "en": "normal"},
    "ips.interpretation.abnormal": {"vi": "bất thường", "en": "abnormal"},
    "ips.interpretation.low": {"vi": "thấp", "en": "low"},
    "ips.interpretation.high": {"vi": "cao", "en": "high"},
    "ips.interpretation.critical-low": {"vi": "thấp nguy hiểm", "en": "critically low"},
    "ips.interpretation.critical-high": {"vi": "cao nguy hiểm", "en": "critically high"},
    "ips.head.name": {"vi": "Tên", "en": "Name"},
    "ips.head.detail": {"vi": "Chi tiết", "en": "Details"},
    "ips.head.date": {"vi": "Ngày", "en": "Date"},
})
