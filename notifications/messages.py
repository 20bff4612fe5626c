"""Vietnamese and English texts: inbox templates per trigger, generic channel texts, problems.

Inbox texts are rendered on read from the notification's (encrypted) parameters. Channel texts
(push, SMS, e-mail) are deliberately generic: no health details, names or identifiers.
"""

from __future__ import annotations

from core.i18n import register_messages

TEMPLATES = {
    # Vaccinations ----------------------------------------------------------------------------
    "notification.vaccination-due.title": {
        "vi": "Sắp đến lịch tiêm chủng", "en": "Vaccination due soon"},
    "notification.vaccination-due.body.self": {
        "vi": "Bạn đến lịch tiêm {doses} vào ngày {due_date}.",
        "en": "You are due for {doses} on {due_date}."},
    "notification.vaccination-due.body.other": {
        "vi": "{name} đến lịch tiêm {doses} vào ngày {due_date}. Hãy đưa trẻ đến trạm y tế.",
        "en": "{name} is due for {doses} on {due_date}. Please visit the health station."},
    "notification.vaccination-overdue.title": {
        "vi": "Mũi tiêm đã quá hạn", "en": "Vaccination overdue"},
    "notification.vaccination-overdue.body.self": {
        "vi": "Mũi {doses} (hẹn ngày {due_date}) đã quá hạn. Hãy đến trạm y tế để tiêm bù.",
        "en": "Overdue since {due_date}: {doses}. Please visit the health station."},
    "notification.vaccination-overdue.body.other": {
        "vi": "{name} đã quá hạn mũi {doses} (hẹn ngày {due_date}). "
              "Hãy đưa trẻ đến trạm y tế để tiêm bù.",
        "en": "{name} is overdue for {doses} (due {due_date}). "
              "Please bring them to the health station."},
    # The record ------------------------------------------------------------------------------
    "notification.entry-created.title": {
        "vi": "Hồ sơ sức khỏe có thông tin mới", "en": "New entry in the health record"},
    "notification.entry-created.body.self": {
        "vi": "{author} đã thêm thông tin vào mục {section} trong hồ sơ của bạn.",
        "en": "{author} added to the {section} section of your record."},
    "notification.entry-created.body.other": {
        "vi": "{author} đã thêm thông tin vào mục {section} trong hồ sơ của {name}.",
        "en": "{author} added to the {section} section of {name}'s record."},
    "notification.entry-created.restricted.self": {
        "vi": "{author} đã thêm một thông tin nhạy cảm vào hồ sơ của bạn.",
        "en": "{author} added a sensitive entry to your record."},
    "notification.record-accessed.title": {
        "vi": "Có người xem hồ sơ sức khỏe", "en": "Someone viewed the health record"},
    "notification.record-accessed.body.self": {
        "vi": "{actor} đã xem hồ sơ của bạn hôm nay ({date}).",
        "en": "{actor} viewed your record today ({date})."},
    "notification.record-accessed.body.other": {
        "vi": "{actor} đã xem hồ sơ của {name} hôm nay ({date}).",
        "en": "{actor} viewed {name}'s record today ({date})."},
    "notification.break-glass.title": {
        "vi": "Truy cập khẩn cấp vào hồ sơ", "en": "Emergency access to the record"},
    "notification.break-glass.body.self": {
        "vi": "{actor} đã mở quyền truy cập khẩn cấp vào hồ sơ của bạn. Nếu bạn không nhận ra "
              "việc này, hãy báo trong nhật ký truy cập.",
        "en": "{actor} opened emergency access to your record. If you do not recognise this, "
              "report it in your access log."},
    "notification.break-glass.body.other": {
        "vi": "{actor} đã mở quyền truy cập khẩn cấp vào hồ sơ của {name}. Nếu bạn không nhận "
              "ra việc này, hãy báo trong nhật ký truy cập.",
        "en": "{actor} opened emergency access to {name}'s record. If you do not recognise "
              "this, report it in the access log."},
    "notification.access-requested.title": {
        "vi": "Yêu cầu xem hồ sơ", "en": "Request to view the record"},
    "notification.access-requested.body.self": {
        "vi": "{actor} xin quyền xem hồ sơ của bạn. Hãy trả lời trong ứng dụng.",
        "en": "{actor} asks to view your record. Answer in the app."},
    "notification.access-requested.body.other": {
        "vi": "{actor} xin quyền xem hồ sơ của {name}. Hãy trả lời trong ứng dụng.",
        "en": "{actor} asks to view {name}'s record. Answer in the app."},
    "notification.access-request-answered.title": {
        "vi": "Yêu cầu xem hồ sơ đã được trả lời", "en": "Your access request was answered"},
    "notification.access-request-answered.body.approved": {
        "vi": "{name} đã đồng ý yêu cầu xem hồ sơ của bạn.",
        "en": "{name} approved your request to view their record."},
    "notification.access-request-answered.body.denied": {
        "vi": "{name} đã từ chối yêu cầu xem hồ sơ của bạn.",
        "en": "{name} declined your request to view their record."},
    "notification.consent-expiring.title": {
        "vi": "Quyền xem hồ sơ sắp hết hạn", "en": "A consent is about to expire"},
    "notification.consent-expiring.body.self": {
        "vi": "Một quyền xem hồ sơ bạn đã cấp sẽ hết hạn vào ngày {date}.",
        "en": "A consent you granted on your record expires on {date}."},
    "notification.consent-expiring.body.other": {
        "vi": "Một quyền xem hồ sơ của {name} sẽ hết hạn vào ngày {date}.",
        "en": "A consent on {name}'s record expires on {date}."},
    "notification.periodic-exam-due.title": {
        "vi": "Đến hạn khám sức khỏe định kỳ", "en": "Periodic health check due"},
    "notification.periodic-exam-due.body.self": {
        "vi": "Bạn đến hạn khám sức khỏe định kỳ vào ngày {due_date}.",
        "en": "Your periodic health check is due on {due_date}."},
    "notification.periodic-exam-due.body.other": {
        "vi": "{name} đến hạn khám sức khỏe định kỳ vào ngày {due_date}.",
        "en": "{name}'s periodic health check is due on {due_date}."},
    # Relationships: who may act on the record ------------------------------------------------
    # Rendered with the subject's name only; the app fetches the details over the API.
    "notification.guardian-claimed.title": {
        "vi": "Có người xin làm người giám hộ", "en": "Someone asks to become a guardian"},
    "notification.guardian-claimed.body.self": {
        "vi": "Có người xin được đăng ký làm người giám hộ của bạn. Nếu bạn không biết người "
              "này, hãy báo cho trạm y tế.",
        "en": "Someone asked to be registered as your guardian. If you do not know them, tell "
              "your health station."},
    "notification.guardian-claimed.body.other": {
        "vi": "Có người xin được đăng ký làm người giám hộ của {name}. Hãy xem và trả lời "
              "trong ứng dụng; yêu cầu chưa có hiệu lực cho đến khi được chấp thuận.",
        "en": "Someone asked to be registered as {name}'s guardian. Review and answer it in "
              "the app; it gives no access unless approved."},
    "notification.guardian-claim-answered.title": {
        "vi": "Yêu cầu làm người giám hộ đã được trả lời",
        "en": "Your guardian request was answered"},
    "notification.guardian-claim-answered.body.self": {
        "vi": "Yêu cầu làm người giám hộ của bạn đã được trả lời. Xem kết quả trong ứng dụng.",
        "en": "Your request to become a guardian was answered. See the result in the app."},
    # No name: a refused claimant must not learn whom the health ID belongs to.
    "notification.guardian-claim-answered.body.other": {
        "vi": "Yêu cầu làm người giám hộ của bạn đã được trả lời. Xem kết quả trong ứng dụng.",
        "en": "Your request to become a guardian was answered. See the result in the app."},
    "notification.guardians-changed.title": {
        "vi": "Người giám hộ đã thay đổi", "en": "Guardians changed"},
    "notification.guardians-changed.body.self": {
        "vi": "Người giám hộ hoặc người đại diện trong hồ sơ của bạn đã thay đổi. Xem chi tiết "
              "trong ứng dụng.",
        "en": "The guardians or proxies on your record changed. See the details in the app."},
    "notification.guardians-changed.body.other": {
        "vi": "Người giám hộ hoặc người đại diện trong hồ sơ của {name} đã thay đổi. Xem chi "
              "tiết trong ứng dụng.",
        "en": "The guardians or proxies on {name}'s record changed. See the details in the "
              "app."},
    "notification.family-doctor-changed.title": {
        "vi": "Đăng ký bác sĩ gia đình đã thay đổi", "en": "Family doctor changed"},
    "notification.family-doctor-changed.body.self": {
        "vi": "Đăng ký bác sĩ gia đình của bạn đã thay đổi. Xem chi tiết trong ứng dụng.",
        "en": "Your family doctor registration changed. See the details in the app."},
    "notification.family-doctor-changed.body.other": {
        "vi": "Đăng ký bác sĩ gia đình của {name} đã thay đổi.",
        "en": "{name}'s family doctor registration changed."},
    # Told to the practitioners themselves (on their staff accounts), in their inbox only.
    "notification.family-doctor-changed.title.registered": {
        "vi": "Người dân mới đăng ký bác sĩ gia đình",
        "en": "A new family-doctor registration"},
    "notification.family-doctor-changed.body.registered": {
        "vi": "{name} đã đăng ký bạn làm bác sĩ gia đình tại {facility}. Bạn có thể xem hồ "
              "sơ sức khỏe của người này.",
        "en": "{name} registered with you as their family doctor at {facility}. You can now "
              "see their health record."},
    "notification.family-doctor-changed.title.left": {
        "vi": "Người dân chuyển bác sĩ gia đình", "en": "A patient changed family doctor"},
    "notification.family-doctor-changed.body.left": {
        "vi": "{name} không còn đăng ký bạn làm bác sĩ gia đình.",
        "en": "{name} is no longer registered with you as their family doctor."},
    "notification.consent-granted.title": {
        "vi": "Quyền xem hồ sơ vừa được cấp", "en": "Access to a record was granted"},
    "notification.consent-granted.body.self": {
        "vi": "Một quyền xem hồ sơ của bạn vừa được cấp. Xem chi tiết trong ứng dụng.",
        "en": "A consent on your record was granted. See the details in the app."},
    "notification.consent-granted.body.other": {
        "vi": "Một quyền xem hồ sơ của {name} vừa được cấp.",
        "en": "A consent on {name}'s record was granted."},
    "notification.consent-revoked.title": {
        "vi": "Quyền xem hồ sơ đã bị thu hồi", "en": "Access to a record was revoked"},
    "notification.consent-revoked.body.self": {
        "vi": "Một quyền xem hồ sơ của bạn đã bị thu hồi.",
        "en": "A consent on your record was revoked."},
    "notification.consent-revoked.body.other": {
        "vi": "Một quyền xem hồ sơ của {name} đã bị thu hồi.",
        "en": "A consent on {name}'s record was revoked."},
    "notification.access-flag-reviewed.title": {
        "vi": "Báo cáo truy cập đã được xem xét", "en": "Your report was reviewed"},
    "notification.access-flag-reviewed.body.self": {
        "vi": "Cơ sở y tế đã xem xét lượt truy cập bạn báo là không nhận ra. Xem kết quả trong "
              "nhật ký truy cập.",
        "en": "The health facility reviewed the access you did not recognise. See the outcome "
              "in your access log."},
    "notification.access-flag-reviewed.body.other": {
        "vi": "Cơ sở y tế đã xem xét lượt truy cập hồ sơ của {name} mà bạn đã báo. Xem kết quả "
              "trong nhật ký truy cập.",
        "en": "The health facility reviewed the access to {name}'s record you reported. See "
              "the outcome in the access log."},
    # Fragments -------------------------------------------------------------------------------
    "notification.actor.practitioner-at": {
        "vi": "{practitioner} ({facility})", "en": "{practitioner} ({facility})"},
    "notification.actor.unknown": {"vi": "Một nhân viên y tế", "en": "A health worker"},
    "notification.actor.facility": {"vi": "{facility}", "en": "{facility}"},
    "notification.name.unknown": {"vi": "người được bạn giám hộ", "en": "your dependant"},
    "notification.name.patient": {"vi": "Một người dân", "en": "A citizen"},
    "notification.facility.yours": {"vi": "cơ sở của bạn", "en": "your facility"},
    "notification.list.and": {"vi": " và ", "en": " and "},
}

SECTIONS = {
    "allergies": ("dị ứng", "allergies"),
    "conditions": ("bệnh tật", "conditions"),
    "encounters": ("lần khám", "visits"),
    "observations": ("chỉ số sức khỏe", "measurements"),
    "medications": ("thuốc", "medications"),
    "immunizations": ("tiêm chủng", "vaccinations"),
    "lab-results": ("xét nghiệm", "lab results"),
    "family-history": ("tiền sử gia đình", "family history"),
    "history": ("tiền sử bản thân", "personal history"),
    "examinations": ("khám sức khỏe định kỳ", "health checks"),
}

# What leaves the machine. No health details, names or identifiers (DESIGN §6).
CHANNEL_TEXTS = {
    "notification.push.title": {"vi": "Sổ sức khỏe điện tử", "en": "Health record"},
    "notification.push.body": {
        "vi": "Bạn có thông báo sức khỏe mới", "en": "You have a new health notification"},
    "notification.push.body.urgent": {
        "vi": "Bạn có thông báo quan trọng về hồ sơ sức khỏe",
        "en": "You have an important notification about your health record"},
    # SMS without diacritics: 160 GSM-7 characters instead of 70 UCS-2 per segment, and what
    # Vietnamese carriers expect of brand-name messages.
    "notification.sms.body": {
        "vi": "So suc khoe dien tu: Ban co thong bao suc khoe moi. Mo ung dung de xem chi tiet.",
        "en": "Health record: You have a new health notification. Open the app for details."},
    "notification.sms.body.urgent": {
        "vi": "So suc khoe dien tu: Ban co thong bao QUAN TRONG ve ho so suc khoe. "
              "Mo ung dung ngay de xem.",
        "en": "Health record: You have an IMPORTANT notification about your health record. "
              "Open the app now."},
    # A vaccination reminder by SMS says what to do (date, station, what to bring): no name,
    # no vaccine. Parents without the app have nothing else to go by.
    "notification.sms.visit.due": {
        "vi": "So suc khoe dien tu: Tre co lich tiem chung ngay {date} {where}. "
              "Vui long dua tre den va mang theo so tiem chung.",
        "en": "Health record: A child is due for vaccination on {date} {where}. "
              "Please bring the child and the vaccination book."},
    "notification.sms.visit.overdue": {
        "vi": "So suc khoe dien tu: Tre da qua lich tiem chung ngay {date}. Vui long dua tre "
              "den tiem bu {where} va mang theo so tiem chung.",
        "en": "Health record: A child missed a vaccination due on {date}. Please bring the "
              "child and the vaccination book {where} to catch up."},
    "notification.sms.visit.at": {"vi": "tai {station}", "en": "at {station}"},
    "notification.sms.visit.at-station": {
        "vi": "tai tram y te xa", "en": "at the commune health station"},
    "notification.email.subject": {
        "vi": "Thông báo sức khỏe mới", "en": "New health notification"},
    "notification.email.subject.urgent": {
        "vi": "Thông báo quan trọng về hồ sơ sức khỏe",
        "en": "Important notification about your health record"},
    "notification.email.body": {
        "vi": "Xin chào,\n\nBạn có thông báo mới trong Sổ sức khỏe điện tử. Vì lý do bảo mật, "
              "nội dung chỉ hiển thị trong ứng dụng sau khi bạn đăng nhập:\n\n{link}\n\n"
              "Đây là thư tự động, vui lòng không trả lời.",
        "en": "Hello,\n\nYou have a new notification in your health record. For your privacy "
              "its content is shown only in the app after you sign in:\n\n{link}\n\n"
              "This is an automatic message; please do not reply."},
}

PROBLEMS = {
    "problem.notification-recipient-required.title": {
        "vi": "Cần tài khoản cá nhân", "en": "A personal account is required"},
    "problem.notification-recipient-required.detail": {
        "vi": "Hộp thư thông báo chỉ dành cho người dùng đăng nhập bằng tài khoản cá nhân.",
        "en": "The notification inbox is only for people signed in with their own account."},
    "notification.invalid-platform": {
        "vi": "Nền tảng phải là fcm hoặc webpush.", "en": "The platform must be fcm or webpush."},
    "notification.invalid-token": {
        "vi": "Mã thiết bị không hợp lệ.", "en": "The device token is not valid."},
    "notification.invalid-subscription": {
        "vi": "Đăng ký Web Push không hợp lệ (cần endpoint https của dịch vụ đẩy và khóa "
              "p256dh, auth).",
        "en": "The Web Push subscription is not valid (it needs an https endpoint of a push "
              "service and the p256dh and auth keys)."},
    "notification.webpush-unavailable": {
        "vi": "Máy chủ chưa cấu hình Web Push.", "en": "Web Push is not configured."},
    "notification.unknown-trigger": {
        "vi": "Loại thông báo không tồn tại.", "en": "Unknown notification type."},
    "notification.unknown-channel": {
        "vi": "Kênh phải là push, sms hoặc email.",
        "en": "The channel must be push, sms or email."},
    "notification.invalid-quiet-hours": {
        "vi": "Giờ yên lặng phải có dạng HH:MM, khác nhau.",
        "en": "Quiet hours need HH:MM start and end times that differ."},
    "notification.invalid-language": {
        "vi": "Ngôn ngữ phải là vi hoặc en.", "en": "The language must be vi or en."},
    "notification.must-be-boolean": {
        "vi": "Giá trị phải là true hoặc false.", "en": "The value must be true or false."},
}


def register() -> None:
    """Add every text of this package to the catalogue (idempotent)."""
    register_messages(TEMPLATES)
    register_messages(CHANNEL_TEXTS)
    register_messages(PROBLEMS)
    register_messages({
        f"notification.section.{code}": {"vi": vi, "en": en}
        for code, (vi, en) in SECTIONS.items()
    })


register()
