"""Texts of the consent layer: validation and problems, and the access log in plain words."""

from core.i18n import register_messages

PROBLEMS = {
    "consent.grantee-type": {
        "vi": "Người được cấp quyền phải là bác sĩ (practitioner) hoặc cơ sở y tế (facility).",
        "en": "The grantee must be a practitioner or a facility.",
    },
    "consent.grantee-unknown": {
        "vi": "Không tìm thấy bác sĩ hoặc cơ sở y tế này.",
        "en": "No such practitioner or facility.",
    },
    "consent.sections-required": {
        "vi": "Hãy chọn ít nhất một mục hồ sơ.",
        "en": "Choose at least one section of the record.",
    },
    "consent.section-unknown": {
        "vi": "Mục không thể cấp quyền: {names}.",
        "en": "These sections cannot be granted: {names}.",
    },
    "consent.category-unknown": {
        "vi": "Nhóm thông tin nhạy cảm không hợp lệ: {names}.",
        "en": "Unknown restricted categories: {names}.",
    },
    "consent.access-unknown": {
        "vi": "Quyền phải là read hoặc read-write.",
        "en": "Access must be read or read-write.",
    },
    "consent.purpose-unknown": {
        "vi": "Mục đích phải là treatment hoặc public-health.",
        "en": "The purpose must be treatment or public-health.",
    },
    "consent.period-order": {
        "vi": "Ngày kết thúc của khoảng dữ liệu phải sau ngày bắt đầu.",
        "en": "The end of the data period must not be before its start.",
    },
    "consent.expiry-past": {
        "vi": "Thời hạn phải là một thời điểm trong tương lai.",
        "en": "The expiry must be in the future.",
    },
    "consent.reason-required": {
        "vi": "Hãy nêu lý do.",
        "en": "A reason is required.",
    },
    "consent.reason-too-long": {
        "vi": "Lý do không được dài quá {max} ký tự.",
        "en": "The reason must be at most {max} characters.",
    },
    "consent.facility-required": {
        "vi": "Bạn làm việc tại nhiều cơ sở: hãy chọn facility_id.",
        "en": "You work at several facilities: give facility_id.",
    },
    "consent.facility-not-member": {
        "vi": "Bạn không làm việc tại cơ sở này.",
        "en": "You do not work at this facility.",
    },
    "guardian.kind-unknown": {
        "vi": "Loại giám hộ phải là minor (trẻ vị thành niên) hoặc proxy (người đại diện).",
        "en": "The kind must be minor or proxy.",
    },
    "guardian.relationship-unknown": {
        "vi": "Quan hệ không hợp lệ.",
        "en": "Unknown relationship.",
    },
    "guardian.dependant-not-minor": {
        "vi": "Người được giám hộ đã đủ {age} tuổi.",
        "en": "The dependant is {age} or older.",
    },
    "guardian.proxy-by-self-only": {
        "vi": "Chỉ người đã trưởng thành mới tự chỉ định người đại diện cho mình.",
        "en": "Only an adult names a proxy, for themselves.",
    },
    "guardian.categories-proxy-only": {
        "vi": "Chỉ có thể chia sẻ thông tin nhạy cảm với người đại diện do chính bạn chỉ định.",
        "en": "Restricted categories can only be shared with a proxy you name yourself.",
    },
    "guardian.name-by-health-id": {
        "vi": "Hãy nêu người giám hộ bằng mã định danh và ngày sinh.",
        "en": "Name the guardian by health ID and date of birth.",
    },
    "guardian.person-not-matched": {
        "vi": "Không tìm thấy người có mã định danh và ngày sinh này.",
        "en": "No person with this health ID and date of birth.",
    },
    "guardian.ref-one-way": {
        "vi": "Hãy nêu người này bằng citizen_id, hoặc bằng health_id kèm date_of_birth.",
        "en": "Name the person by citizen_id, or by health_id with date_of_birth.",
    },
    "guardian.self": {
        "vi": "Một người không thể là người giám hộ của chính mình.",
        "en": "A person cannot be their own guardian.",
    },
    "guardian.end-reason-required": {
        "vi": "Hãy nêu lý do chấm dứt quyền giám hộ; người giám hộ sẽ được thông báo lý do này.",
        "en": "Give the reason for ending the guardianship; the guardians are told it.",
    },
    "guardian.registration-station-only": {
        "vi": "Chỉ trạm y tế đăng ký trẻ mới có thể nêu cha mẹ khi đăng ký.",
        "en": "Only the station registering the child can name its parents.",
    },
    "consent.category-teen-only": {
        "vi": "Từ 12 tuổi, thông tin nhạy cảm chỉ do chính trẻ quyết định chia sẻ.",
        "en": "From 12, only the young person decides who sees their restricted information.",
    },
    "family-doctor.not-eligible": {
        "vi": "Người này không phải là bác sĩ hoặc y sĩ đang làm việc tại cơ sở đã chọn.",
        "en": "This person is not a doctor or physician assistant currently working at the "
              "chosen facility.",
    },
    "flag.outcome-unknown": {
        "vi": "Kết quả phải là justified, unjustified hoặc inconclusive.",
        "en": "The outcome must be justified, unjustified or inconclusive.",
    },
    "problem.teen-privacy.title": {
        "vi": "Thông tin riêng của trẻ vị thành niên",
        "en": "The young person's own information",
    },
    "problem.guardian-claim-pending.title": {
        "vi": "Đã có yêu cầu đang chờ",
        "en": "A claim is pending",
    },
    "problem.guardian-claim-pending.detail": {
        "vi": "Bạn đã xin làm người giám hộ của trẻ này; yêu cầu đang chờ người giám hộ hoặc "
              "trạm y tế xác nhận.",
        "en": "You already asked to become this child's guardian; the claim awaits a guardian "
              "or the health station.",
    },
    "problem.guardian-claim-answered.title": {
        "vi": "Yêu cầu đã được trả lời",
        "en": "Already answered",
    },
    "problem.guardian-claim-answered.detail": {
        "vi": "Yêu cầu làm người giám hộ này đã được trả lời.",
        "en": "This guardian claim has already been answered.",
    },
    "problem.guardian-claim-not-minor.title": {
        "vi": "Không còn là trẻ vị thành niên",
        "en": "No longer a minor",
    },
    "problem.guardian-claim-not-minor.detail": {
        "vi": "Người này đã đủ tuổi tự quyết định; yêu cầu không thể được chấp thuận.",
        "en": "This person has come of age; the claim can no longer be approved.",
    },
    "problem.access-flag-reviewed.title": {
        "vi": "Đã xem xét",
        "en": "Already reviewed",
    },
    "problem.access-flag-reviewed.detail": {
        "vi": "Báo cáo này đã được xem xét và trả lời.",
        "en": "This flag has already been reviewed and answered.",
    },
    "problem.invalid-flag.title": {"vi": "Tham số không hợp lệ", "en": "Invalid parameter"},
    "problem.invalid-flag.detail": {
        "vi": "Tham số {name} phải là true hoặc false.",
        "en": "The {name} parameter must be true or false.",
    },
    "problem.invalid-status.title": {"vi": "Tham số không hợp lệ", "en": "Invalid parameter"},
    "problem.invalid-status.detail": {
        "vi": "status phải là pending, approved hoặc denied.",
        "en": "status must be pending, approved or denied.",
    },
    "problem.invalid-flag-status.detail": {
        "vi": "status phải là open hoặc reviewed.",
        "en": "status must be open or reviewed.",
    },
    "problem.access-request-pending.title": {
        "vi": "Đã có yêu cầu đang chờ",
        "en": "A request is pending",
    },
    "problem.access-request-pending.detail": {
        "vi": "Bạn đã gửi một yêu cầu truy cập cho người này và đang chờ trả lời.",
        "en": "You already asked this person for access; the answer is pending.",
    },
    "problem.access-request-answered.title": {
        "vi": "Yêu cầu đã được trả lời",
        "en": "Already answered",
    },
    "problem.access-request-answered.detail": {
        "vi": "Yêu cầu truy cập này đã được trả lời.",
        "en": "This access request has already been answered.",
    },
    "problem.guardian-exists.title": {
        "vi": "Đã là người giám hộ",
        "en": "Already a guardian",
    },
    "problem.guardian-exists.detail": {
        "vi": "Người này đã là người giám hộ hoặc người đại diện.",
        "en": "This person is already a guardian or proxy.",
    },
}

# The access log: "{actor} {done} {what}", e.g. "Bác sĩ Nguyễn Thị Hương tại Trạm Y tế xã
# Liên Bão đã xem tiêm chủng của bạn" / "Dr. Nguyễn Thị Hương at ... read your vaccinations".
ACCESS_LOG = {
    "access-log.permit": {"vi": "{actor} {done} {what}", "en": "{actor} {done} {what}"},
    "access-log.deny": {
        "vi": "{actor} đã bị từ chối khi muốn {attempt} {what}",
        "en": "{actor} was refused when trying to {attempt} {what}",
    },
    "access-log.emergency": {"vi": " (truy cập khẩn cấp)", "en": " (emergency access)"},
    "access-log.reason": {
        "vi": "{sentence}. Lý do: {reason}",
        "en": "{sentence}. Reason: {reason}",
    },
    "access-log.what": {"vi": "{section} của {whose}", "en": "{whose} {section}"},
    "access-log.whose.you": {"vi": "bạn", "en": "your"},
    "access-log.whose.named": {"vi": "{name}", "en": "{name}'s"},
    "access-log.whose.unnamed": {"vi": "người được giám hộ", "en": "your dependant's"},
    "access-log.actor.practitioner": {"vi": "{title} {name}", "en": "{title} {name}"},
    "access-log.actor.practitioner-at": {
        "vi": "{title} {name} tại {facility}",
        "en": "{title} {name} at {facility}",
    },
    "access-log.actor.station": {"vi": "{facility}", "en": "{facility}"},
    "access-log.actor.facility-unknown": {"vi": "Một cơ sở y tế", "en": "A health facility"},
    "access-log.actor.practitioner-unknown": {"vi": "Một nhân viên y tế", "en": "A health worker"},
    "access-log.actor.guardian": {"vi": "{name} (người giám hộ)", "en": "{name} (guardian)"},
    "access-log.actor.citizen": {"vi": "{name}", "en": "{name}"},
    "access-log.actor.someone": {"vi": "Một người dùng", "en": "A user"},
    "access-log.actor.you": {"vi": "Bạn", "en": "You"},
    "access-log.actor.admin": {"vi": "Quản trị viên hệ thống", "en": "A system administrator"},
    "access-log.actor.recipient": {"vi": "{name}", "en": "{name}"},
    "access-log.actor.recipient-unknown": {"vi": "Người nhận liên kết chia sẻ",
                                           "en": "Someone with your share link"},
    "access-log.title.doctor": {"vi": "Bác sĩ", "en": "Dr."},
    "access-log.title.physician-assistant": {"vi": "Y sĩ", "en": "Physician assistant"},
    "access-log.title.nurse": {"vi": "Điều dưỡng", "en": "Nurse"},
    "access-log.title.midwife": {"vi": "Hộ sinh", "en": "Midwife"},
    "access-log.title.vaccinator": {"vi": "Cán bộ tiêm chủng", "en": "Vaccinator"},
    "access-log.title.other": {"vi": "Nhân viên y tế", "en": "Health worker"},
    # What was done ("done": the permitted action; "attempt": the refused one).
    "access-log.done.read": {"vi": "đã xem", "en": "read"},
    "access-log.attempt.read": {"vi": "xem", "en": "read"},
    "access-log.done.create": {"vi": "đã thêm vào", "en": "added to"},
    "access-log.attempt.create": {"vi": "thêm vào", "en": "add to"},
    "access-log.done.update": {"vi": "đã sửa", "en": "updated"},
    "access-log.attempt.update": {"vi": "sửa", "en": "update"},
    "access-log.done.entered-in-error": {
        "vi": "đã đánh dấu nhập nhầm một mục trong",
        "en": "marked an entry as entered in error in",
    },
    "access-log.attempt.entered-in-error": {
        "vi": "đánh dấu nhập nhầm một mục trong",
        "en": "mark an entry as entered in error in",
    },
    "access-log.done.manage": {"vi": "đã thay đổi", "en": "changed"},
    "access-log.attempt.manage": {"vi": "thay đổi", "en": "change"},
    "access-log.done.lookup": {"vi": "đã tra cứu", "en": "looked up"},
    "access-log.attempt.lookup": {"vi": "tra cứu", "en": "look up"},
    "access-log.done.break-glass": {
        "vi": "đã mở truy cập khẩn cấp vào",
        "en": "opened emergency access to",
    },
    "access-log.attempt.break-glass": {
        "vi": "mở truy cập khẩn cấp vào",
        "en": "open emergency access to",
    },
    "access-log.done.ask-access": {"vi": "đã gửi yêu cầu truy cập", "en": "asked for access to"},
    "access-log.done.claim-guardian": {"vi": "đã xin làm", "en": "asked to become"},
    "access-log.attempt.claim-guardian": {"vi": "xin làm", "en": "become"},
    "access-log.attempt.ask-access": {"vi": "gửi yêu cầu truy cập", "en": "ask for access to"},
    # Sections and other targets, as a citizen says them.
    "access-log.section.allergies": {"vi": "dị ứng", "en": "allergies"},
    "access-log.section.conditions": {"vi": "bệnh lý", "en": "conditions"},
    "access-log.section.encounters": {"vi": "các lần khám", "en": "visits"},
    "access-log.section.observations": {"vi": "chỉ số sức khỏe", "en": "measurements"},
    "access-log.section.medications": {"vi": "thuốc đang dùng", "en": "medications"},
    "access-log.section.immunizations": {"vi": "tiêm chủng", "en": "vaccinations"},
    "access-log.section.lab-results": {"vi": "kết quả xét nghiệm", "en": "lab results"},
    "access-log.section.family-history": {"vi": "tiền sử gia đình", "en": "family history"},
    "access-log.section.history": {
        "vi": "tiền sử bản thân và lối sống",
        "en": "personal history and lifestyle",
    },
    "access-log.section.examinations": {
        "vi": "khám sức khỏe định kỳ",
        "en": "periodic examinations",
    },
    "access-log.section.demographics": {"vi": "thông tin cá nhân", "en": "personal details"},
    "access-log.section.identity-lookup": {"vi": "thông tin định danh", "en": "identity"},
    "access-log.section.immunization-schedule": {
        "vi": "lịch tiêm chủng",
        "en": "vaccination schedule",
    },
    "access-log.section.summary": {"vi": "tóm tắt hồ sơ", "en": "record summary"},
    "access-log.section.consents": {"vi": "các quyền truy cập đã cấp", "en": "consents"},
    "access-log.section.guardians": {"vi": "người giám hộ", "en": "guardians"},
    "access-log.section.access-requests": {"vi": "yêu cầu truy cập", "en": "access requests"},
    "access-log.section.access-log": {"vi": "nhật ký truy cập", "en": "access log"},
    "access-log.section.export": {"vi": "toàn bộ dữ liệu", "en": "full data export"},
    "access-log.section.family-doctor": {
        "vi": "đăng ký bác sĩ gia đình",
        "en": "family doctor registration",
    },
    "access-log.section.notification-preferences": {
        "vi": "cài đặt thông báo",
        "en": "notification settings",
    },
    "access-log.section.record": {"vi": "hồ sơ", "en": "record"},
    "access-log.section.guardian-of": {"vi": "người giám hộ", "en": "guardian"},
    "access-log.section.guardian-claim": {
        "vi": "yêu cầu làm người giám hộ",
        "en": "guardian claim",
    },
}

register_messages(PROBLEMS)
register_messages(ACCESS_LOG)
