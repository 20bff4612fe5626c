"""Texts of the family doctor's panel, Vietnamese and English."""

from core.i18n import register_messages

register_messages({
    "panel.flag.vaccination-overdue": {
        "vi": "{dose} quá hạn từ {since} ({count} mũi quá hạn).",
        "en": "{dose} overdue since {since} ({count} doses overdue)."},
    "panel.flag.measurement-missing": {
        "vi": "{condition}: chưa đo {measurement} trong {interval} (lần gần nhất {last}).",
        "en": "{condition}: no {measurement} within {interval} (last on {last})."},
    "panel.flag.measurement-never": {
        "vi": "{condition}: không có kết quả đo {measurement} trong {interval} gần đây.",
        "en": "{condition}: no {measurement} within the last {interval}."},
    "panel.flag.exam-due": {
        "vi": "Khám sức khỏe định kỳ đến hạn ngày {due}.",
        "en": "Periodic health examination due on {due}."},
    "panel.flag.exam-overdue": {
        "vi": "Khám sức khỏe định kỳ quá hạn từ ngày {due}.",
        "en": "Periodic health examination overdue since {due}."},
    "panel.flag-unknown": {
        "vi": "Cờ lọc không hợp lệ.",
        "en": "Unknown flag."},
    "panel.practitioners-only": {
        "vi": "Chỉ bác sĩ gia đình có danh sách người đăng ký.",
        "en": "Only a family doctor has a list of registered people."},
})
