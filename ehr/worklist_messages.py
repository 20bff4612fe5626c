"""Texts of the station's vaccination worklist (problems, the printable list), vi and en."""

from core.i18n import register_messages

register_messages({
    "worklist.date-invalid": {
        "vi": "Ngày phải có dạng YYYY-MM-DD.",
        "en": "The date must look like YYYY-MM-DD."},
    "worklist.range-order": {
        "vi": "Ngày kết thúc phải từ ngày bắt đầu trở đi.",
        "en": "The end date must not be before the start date."},
    "worklist.range-too-long": {
        "vi": "Khoảng thời gian không được dài quá {days} ngày.",
        "en": "The range must not be longer than {days} days."},
    "worklist.not-your-facility": {
        "vi": "Chỉ trạm y tế của cơ sở này được xem danh sách tiêm chủng của cơ sở.",
        "en": "Only this facility's own station may see its vaccination worklist."},
    "worklist.unknown-village": {"vi": "Chưa rõ thôn/xóm", "en": "Village not known"},
    "worklist.registration-phone": {
        "vi": "SĐT đăng ký", "en": "registration phone"},
    # The printable session list: its header, one column each.
    "worklist.column.village": {"vi": "Thôn/xóm", "en": "Village"},
    "worklist.column.child": {"vi": "Họ và tên trẻ", "en": "Child's name"},
    "worklist.column.date_of_birth": {"vi": "Ngày sinh", "en": "Date of birth"},
    "worklist.column.sex": {"vi": "Giới tính", "en": "Sex"},
    "worklist.column.dose": {"vi": "Mũi tiêm", "en": "Dose"},
    "worklist.column.dose_number": {"vi": "Mũi thứ", "en": "Dose number"},
    "worklist.column.status": {"vi": "Tình trạng", "en": "Status"},
    "worklist.column.due_date": {"vi": "Ngày đến hạn", "en": "Due date"},
    "worklist.column.vaccine": {"vi": "Vắc xin", "en": "Vaccine"},
    "worklist.column.last_dose_date": {"vi": "Mũi gần nhất (ngày)",
                                       "en": "Last dose (date)"},
    "worklist.column.last_dose_vaccine": {"vi": "Mũi gần nhất (vắc xin)",
                                          "en": "Last dose (vaccine)"},
    "worklist.column.contact": {"vi": "Người liên hệ", "en": "Contact"},
    "worklist.column.phone": {"vi": "Số điện thoại", "en": "Phone"},
    "worklist.column.given": {"vi": "Đã tiêm (đánh dấu)", "en": "Given (tick)"},
    "worklist.sex.male": {"vi": "Nam", "en": "Male"},
    "worklist.sex.female": {"vi": "Nữ", "en": "Female"},
    "worklist.sex.other": {"vi": "Khác", "en": "Other"},
    "worklist.relationship.mother": {"vi": "mẹ", "en": "mother"},
    "worklist.relationship.father": {"vi": "bố", "en": "father"},
    "worklist.relationship.parent": {"vi": "cha/mẹ", "en": "parent"},
    "worklist.relationship.grandparent": {"vi": "ông/bà", "en": "grandparent"},
    "worklist.relationship.sibling": {"vi": "anh/chị/em", "en": "sibling"},
    "worklist.relationship.legal-guardian": {"vi": "người giám hộ", "en": "legal guardian"},
    "worklist.relationship.spouse": {"vi": "vợ/chồng", "en": "spouse"},
    "worklist.relationship.child": {"vi": "con", "en": "child"},
    "worklist.relationship.relative": {"vi": "người thân", "en": "relative"},
    "worklist.relationship.other": {"vi": "khác", "en": "other"},
})
