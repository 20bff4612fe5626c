"""Messages of the portal's layout, login and error pages (page-specific catalogues live
beside their views)."""

from core.i18n import register_messages

register_messages({
    "portal.name": {"vi": "Sổ sức khỏe điện tử", "en": "Personal health record"},
    "portal.language.switch": {"vi": "English", "en": "Tiếng Việt"},
    "portal.skip": {"vi": "Bỏ qua, tới nội dung chính", "en": "Skip to main content"},
    "portal.nav.label": {"vi": "Mục chính", "en": "Main menu"},
    "portal.nav.home": {"vi": "Tổng quan", "en": "Summary"},
    "portal.nav.vaccinations": {"vi": "Tiêm chủng", "en": "Vaccinations"},
    "portal.nav.access-log": {"vi": "Ai đã xem hồ sơ", "en": "Who viewed my record"},
    "portal.nav.consents": {"vi": "Quyền truy cập", "en": "Access permissions"},
    "portal.nav.requests": {"vi": "Yêu cầu truy cập", "en": "Access requests"},
    "portal.nav.notifications": {"vi": "Thông báo", "en": "Notifications"},
    "portal.nav.settings": {"vi": "Cài đặt", "en": "Settings"},
    "portal.nav.share": {"vi": "Chia sẻ bằng mã QR", "en": "Share by QR code"},
    "portal.nav.export": {"vi": "Tải hồ sơ về", "en": "Download my record"},
    "portal.people.label": {"vi": "Hồ sơ của", "en": "Record of"},
    "portal.people.self": {"vi": "{name} (tôi)", "en": "{name} (me)"},
    "portal.people.switch": {"vi": "Xem", "en": "Open"},
    "portal.logout": {"vi": "Đăng xuất", "en": "Log out"},
    "portal.login": {"vi": "Đăng nhập", "en": "Log in"},
    "portal.landing.title": {"vi": "Sổ sức khỏe điện tử của bạn",
                             "en": "Your personal health record"},
    "portal.landing.lead": {
        "vi": "Xem hồ sơ sức khỏe của bạn và của con, lịch tiêm chủng, và ai đã xem hồ sơ.",
        "en": "See your and your children's health record, the vaccination schedule, and who "
              "has looked at your record.",
    },
    "portal.landing.login-hint": {
        "vi": "Đăng nhập bằng số định danh cá nhân (12 số) và mật khẩu.",
        "en": "Log in with your personal identification number (12 digits) and password.",
    },
    "portal.landing.activate": {"vi": "Kích hoạt tài khoản bằng mã từ trạm y tế",
                                "en": "Activate your account with a code from your station"},
    "portal.landing.forgot": {"vi": "Quên mật khẩu", "en": "Forgot password"},
    "portal.logged-out.title": {"vi": "Bạn đã đăng xuất", "en": "You are logged out"},
    "portal.logged-out.detail": {
        "vi": "Phiên làm việc đã kết thúc trên máy này.",
        "en": "Your session on this device has ended.",
    },
    "portal.error.title": {"vi": "Không thực hiện được", "en": "Something went wrong"},
    "portal.error.home": {"vi": "Về trang chính", "en": "Back to the home page"},
    "portal.csrf.title": {"vi": "Biểu mẫu đã hết hạn", "en": "Form expired"},
    "portal.csrf.detail": {
        "vi": "Trang này đã cũ hoặc không đến từ cổng. Hãy mở lại trang và gửi lại.",
        "en": "This page is out of date or did not come from the portal. Open it again and "
              "resend.",
    },
    "portal.login-expired.title": {"vi": "Phiên đăng nhập đã hết hạn", "en": "Login expired"},
    "portal.login-expired.detail": {
        "vi": "Việc đăng nhập không hoàn tất kịp. Hãy đăng nhập lại.",
        "en": "The login did not finish in time. Please log in again.",
    },
    "portal.login-refused.title": {"vi": "Chưa đăng nhập", "en": "Not logged in"},
    "portal.login-refused.detail": {
        "vi": "Việc đăng nhập đã bị hủy hoặc bị từ chối.",
        "en": "The login was cancelled or refused.",
    },
    "portal.citizens-only.title": {"vi": "Cổng dành cho người dân",
                                   "en": "The portal is for citizens"},
    "portal.citizens-only.detail": {
        "vi": "Tài khoản nhân viên y tế dùng phần mềm của cơ sở mình, không dùng cổng này.",
        "en": "Staff accounts use their facility's software, not this portal.",
    },
})
