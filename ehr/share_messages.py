"""Texts of the share links (SMART Health Links) and their viewer page, Vietnamese and English."""

from core.i18n import register_messages

register_messages({
    "share.expires-in-past": {"vi": "Thời điểm hết hạn phải ở tương lai.",
                              "en": "The expiry must be in the future."},
    "share.expires-too-late": {
        "vi": "Liên kết chia sẻ chỉ được có hiệu lực tối đa {hours} giờ.",
        "en": "A share link may last at most {hours} hours."},
    "share.passcode-with-single-use": {
        "vi": "Liên kết dùng một lần không thể có mã bảo vệ (theo chuẩn SMART Health Links).",
        "en": "A single-use link cannot have a passcode (SMART Health Links specification)."},
    "share.recipient-required": {
        "vi": "Cần cho biết tên người hoặc cơ sở nhận (recipient).",
        "en": "State who is receiving the summary (recipient)."},
    "share.embedded-length-max": {"vi": "embeddedLengthMax phải là số nguyên dương.",
                                  "en": "embeddedLengthMax must be a positive integer."},
    "share.citizen-only": {
        "vi": "Chỉ người dân (hoặc người giám hộ) mới tạo được liên kết chia sẻ hồ sơ.",
        "en": "Only the person (or their guardian) can share their record by link."},
    "problem.share-passcode.title": {"vi": "Sai mã bảo vệ", "en": "Wrong passcode"},
    "problem.share-passcode.detail": {
        "vi": "Mã bảo vệ không đúng. Còn {remaining} lần thử.",
        "en": "The passcode is wrong. {remaining} attempts remain."},
    # The citizen's access log: "<recipient> opened your shared summary". The section and the
    # verb are looked up by the log's renderer under these keys.
    "access-log.section.shared-summary": {"vi": "bản tóm tắt hồ sơ đã chia sẻ",
                                          "en": "shared summary"},
    "access-log.done.open-shared": {"vi": "đã mở", "en": "opened"},
    "access-log.attempt.open-shared": {"vi": "mở", "en": "open"},
    # The viewer page.
    "share.viewer.title": {"vi": "Tóm tắt hồ sơ sức khỏe", "en": "Health summary"},
    "share.viewer.loading": {"vi": "Đang tải…", "en": "Loading…"},
    "share.viewer.recipient": {"vi": "Tên của bạn hoặc cơ sở y tế",
                               "en": "Your name or your facility"},
    "share.viewer.passcode": {"vi": "Mã bảo vệ", "en": "Passcode"},
    "share.viewer.open": {"vi": "Mở", "en": "Open"},
    "share.viewer.wrong-passcode": {"vi": "Sai mã bảo vệ. Còn {n} lần thử.",
                                    "en": "Wrong passcode. {n} attempts remain."},
    "share.viewer.gone": {
        "vi": "Liên kết này đã hết hạn, bị thu hồi hoặc đã được dùng.",
        "en": "This link has expired, was revoked or has been used."},
    "share.viewer.bad-link": {"vi": "Liên kết không hợp lệ.", "en": "This link is not valid."},
    "share.viewer.error": {"vi": "Không mở được bản tóm tắt. Vui lòng thử lại.",
                           "en": "The summary could not be opened. Please try again."},
    "share.viewer.note": {
        "vi": "Dữ liệu được giải mã ngay trên thiết bị này; khóa không rời khỏi liên kết.",
        "en": "The data is decrypted on this device; the key never leaves the link."},
    "share.viewer.expires": {"vi": "Hết hạn", "en": "Expires"},
    "share.viewer.no-script": {"vi": "Trang này cần JavaScript.",
                               "en": "This page needs JavaScript."},
})
