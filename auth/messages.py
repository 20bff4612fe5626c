"""Messages of the auth package: problems, login and approval pages, scope descriptions."""

from core.i18n import register_messages

PROBLEMS = {
    "problem.token-required.title": {"vi": "Cần đăng nhập", "en": "Access token required"},
    "problem.token-required.detail": {
        "vi": "Yêu cầu này cần mã truy cập (Authorization: Bearer ...).",
        "en": "This request needs an access token (Authorization: Bearer ...).",
    },
    "problem.invalid-token.title": {"vi": "Mã truy cập không hợp lệ", "en": "Invalid token"},
    "problem.invalid-token.detail": {
        "vi": "Mã truy cập không hợp lệ, đã hết hạn hoặc đã bị thu hồi; hãy đăng nhập lại.",
        "en": "The access token is invalid, expired or revoked; sign in again.",
    },
    "problem.insufficient-scope.title": {
        "vi": "Phạm vi truy cập không đủ",
        "en": "Insufficient scope",
    },
    "problem.insufficient-scope.detail": {
        "vi": "Mã truy cập không có phạm vi cần thiết ({scope}).",
        "en": "The access token lacks the scope this needs ({scope}).",
    },
    "problem.role-not-allowed.title": {"vi": "Vai trò không phù hợp", "en": "Role not allowed"},
    "problem.role-not-allowed.detail": {
        "vi": "Vai trò của bạn không được thực hiện thao tác này.",
        "en": "Your role may not do this.",
    },
    "problem.csrf-failed.title": {"vi": "Biểu mẫu đã hết hạn", "en": "Form expired"},
    "problem.csrf-failed.detail": {
        "vi": "Biểu mẫu không hợp lệ hoặc đã hết hạn; hãy tải lại trang và thử lại.",
        "en": "The form is invalid or expired; reload the page and try again.",
    },
    "problem.login-locked.title": {
        "vi": "Tạm khóa đăng nhập",
        "en": "Sign-in temporarily locked",
    },
    "problem.login-locked.detail": {
        "vi": "Đăng nhập sai quá nhiều lần. Hãy thử lại sau khoảng {minutes} phút.",
        "en": "Too many failed sign-ins. Try again in about {minutes} minutes.",
    },
    "problem.invalid-authorization-request.title": {
        "vi": "Yêu cầu đăng nhập không hợp lệ",
        "en": "Invalid sign-in request",
    },
    "problem.invalid-authorization-request.detail": {
        "vi": "Ứng dụng đã gửi một yêu cầu đăng nhập không hợp lệ ({reason}). "
              "Hãy quay lại ứng dụng và thử lại.",
        "en": "The application sent an invalid sign-in request ({reason}). "
              "Go back to the application and try again.",
    },
}

PAGES = {
    "page.title.login": {"vi": "Đăng nhập", "en": "Sign in"},
    "page.title.consent": {"vi": "Cho phép truy cập", "en": "Allow access"},
    "page.title.error": {"vi": "Có lỗi xảy ra", "en": "Something went wrong"},
    "page.service-name": {"vi": "Sổ sức khỏe điện tử", "en": "Personal health record"},
    "page.language.switch": {"vi": "English", "en": "Tiếng Việt"},
    "login.intro": {
        "vi": "Đăng nhập để tiếp tục tới {client}.",
        "en": "Sign in to continue to {client}.",
    },
    "login.username": {
        "vi": "Số định danh cá nhân hoặc tên đăng nhập",
        "en": "Personal identification number or username",
    },
    "login.username.hint": {
        "vi": "Người dân dùng số định danh cá nhân 12 chữ số; nhân viên y tế dùng tên đăng nhập.",
        "en": "Citizens use their 12-digit personal identification number; "
              "health staff use their username.",
    },
    "login.password": {"vi": "Mật khẩu", "en": "Password"},
    "login.submit": {"vi": "Đăng nhập", "en": "Sign in"},
    "login.failed": {
        "vi": "Thông tin đăng nhập không đúng.",
        "en": "The sign-in details are not correct.",
    },
    "login.missing": {
        "vi": "Hãy nhập cả tên đăng nhập và mật khẩu.",
        "en": "Enter both your username and your password.",
    },
    "consent.intro": {
        "vi": "{client} muốn được phép:",
        "en": "{client} would like to:",
    },
    "consent.account": {
        "vi": "Bạn đang đăng nhập là {name}.",
        "en": "You are signed in as {name}.",
    },
    "consent.approve": {"vi": "Cho phép", "en": "Allow"},
    "consent.deny": {"vi": "Từ chối", "en": "Deny"},
    "consent.notice": {
        "vi": "Bạn có thể thu hồi quyền này bất cứ lúc nào bằng cách đăng xuất khỏi ứng dụng.",
        "en": "You can withdraw this at any time by signing out of the application.",
    },
    "error.back": {
        "vi": "Hãy quay lại ứng dụng và thử lại.",
        "en": "Go back to the application and try again.",
    },
}

SCOPES = {
    "scope.openid": {"vi": "Xác nhận bạn là ai", "en": "Confirm who you are"},
    "scope.profile": {"vi": "Xem họ tên của bạn", "en": "See your name"},
    "scope.offline_access": {
        "vi": "Giữ bạn đăng nhập cả khi bạn không mở ứng dụng",
        "en": "Keep you signed in when you are not using the application",
    },
    "scope.patient": {
        "vi": "{verbs}: {resource} của bạn và của người bạn giám hộ",
        "en": "{verbs}: {resource} (yours and those of people in your care)",
    },
    "scope.user": {
        "vi": "{verbs}: {resource} của những người bạn được phép xem",
        "en": "{verbs}: {resource} of the people you may see",
    },
    "scope.system": {
        "vi": "{verbs}: {resource} (hệ thống của cơ sở y tế)",
        "en": "{verbs}: {resource} (a health facility's system)",
    },
    "scope.verb.c": {"vi": "tạo mới", "en": "create"},
    "scope.verb.r": {"vi": "xem", "en": "read"},
    "scope.verb.u": {"vi": "sửa", "en": "update"},
    "scope.verb.d": {"vi": "xóa", "en": "delete"},
    "scope.verb.s": {"vi": "tìm kiếm", "en": "search"},
    "scope.and": {"vi": "và", "en": "and"},
    "resource.*": {"vi": "toàn bộ hồ sơ sức khỏe", "en": "the whole health record"},
    "resource.AllergyIntolerance": {"vi": "dị ứng", "en": "allergies"},
    "resource.Condition": {"vi": "bệnh và vấn đề sức khỏe", "en": "conditions"},
    "resource.Encounter": {"vi": "lần khám bệnh", "en": "visits and examinations"},
    "resource.Observation": {
        "vi": "chỉ số sức khỏe và tiền sử, lối sống",
        "en": "measurements, personal history and lifestyle",
    },
    "resource.MedicationStatement": {"vi": "thuốc đang dùng", "en": "medications"},
    "resource.Immunization": {"vi": "tiêm chủng", "en": "immunizations"},
    "resource.DiagnosticReport": {"vi": "kết quả xét nghiệm", "en": "lab results"},
    "resource.FamilyMemberHistory": {"vi": "tiền sử gia đình", "en": "family history"},
    "resource.Patient": {"vi": "thông tin hành chính", "en": "personal details"},
    "resource.ImmunizationRecommendation": {
        "vi": "lịch tiêm chủng",
        "en": "the vaccination schedule",
    },
    "resource.Consent": {"vi": "sự đồng ý chia sẻ hồ sơ", "en": "sharing consents"},
    "resource.RelatedPerson": {"vi": "người giám hộ", "en": "guardians"},
    "resource.AuditEvent": {"vi": "nhật ký truy cập hồ sơ", "en": "the record's access log"},
    "resource.CareTeam": {"vi": "bác sĩ gia đình", "en": "the family doctor"},
    "resource.Communication": {"vi": "thông báo", "en": "notifications"},
    "resource.Practitioner": {"vi": "thông tin nhân viên y tế", "en": "health staff details"},
    "resource.Organization": {"vi": "thông tin cơ sở y tế", "en": "health facility details"},
}

ACCOUNTS = {
    "account.password.too-short": {
        "vi": "Mật khẩu phải có ít nhất 8 ký tự.",
        "en": "The password must have at least 8 characters.",
    },
    "account.password.too-long": {
        "vi": "Mật khẩu dài quá 256 ký tự.",
        "en": "The password is longer than 256 characters.",
    },
    "account.password.same-as-username": {
        "vi": "Mật khẩu không được trùng tên đăng nhập.",
        "en": "The password must differ from the username.",
    },
}

register_messages({**PROBLEMS, **PAGES, **SCOPES, **ACCOUNTS})
