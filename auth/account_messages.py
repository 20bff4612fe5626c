"""Messages of accounts people open themselves: the activation and password pages, the
station's activation-code API, and the access log's sentence for an issued code."""

from core.i18n import register_messages

PROBLEMS = {
    "problem.account-codes-locked.title": {
        "vi": "Tạm khóa vì thử quá nhiều lần",
        "en": "Temporarily locked after too many tries",
    },
    "problem.account-codes-locked.detail": {
        "vi": "Đã thử quá nhiều lần. Hãy thử lại sau khoảng {minutes} phút.",
        "en": "Too many tries. Try again in about {minutes} minutes.",
    },
    "problem.account-exists.title": {
        "vi": "Người này đã có tài khoản",
        "en": "This person already has an account",
    },
    "problem.account-exists.detail": {
        "vi": "Người này đã có tài khoản. Nếu quên mật khẩu, họ có thể tự đặt lại mật khẩu "
              "bằng mã gửi qua SMS.",
        "en": "This person already has an account. If they forgot the password, they can reset "
              "it with a code sent by SMS.",
    },
    "problem.too-young-for-account.title": {
        "vi": "Chưa đủ tuổi có tài khoản",
        "en": "Too young for an account",
    },
    "problem.too-young-for-account.detail": {
        "vi": "Trẻ dưới {age} tuổi chưa có tài khoản riêng; cha mẹ hoặc người giám hộ xem hồ sơ "
              "của trẻ bằng tài khoản của mình.",
        "en": "Children under {age} have no account of their own; a parent or guardian sees "
              "the child's record with their own account.",
    },
}

PAGES = {
    "page.title.activate": {"vi": "Kích hoạt tài khoản", "en": "Activate your account"},
    "page.title.forgot": {"vi": "Quên mật khẩu", "en": "Forgot your password"},
    "page.title.reset": {"vi": "Đặt lại mật khẩu", "en": "Reset your password"},
    "page.title.activated": {"vi": "Đã kích hoạt tài khoản", "en": "Your account is active"},
    "page.title.password-reset": {"vi": "Đã đổi mật khẩu", "en": "Your password is changed"},
    "account.link.activate": {"vi": "Kích hoạt tài khoản", "en": "Activate an account"},
    "account.link.forgot": {"vi": "Quên mật khẩu", "en": "Forgot password"},
    "account.link.login": {"vi": "Đăng nhập", "en": "Sign in"},
    "account.link.have-code": {
        "vi": "Đã có mã? Đặt lại mật khẩu",
        "en": "Have a code? Reset your password",
    },
    "account.activate.intro": {
        "vi": "Nhập số định danh cá nhân, mã kích hoạt trạm y tế đã in cho bạn hoặc gửi qua "
              "SMS, và chọn mật khẩu.",
        "en": "Enter your personal identification number, the activation code your health "
              "station printed for you or sent by SMS, and choose a password.",
    },
    "account.forgot.intro": {
        "vi": "Nhập số định danh cá nhân. Chúng tôi sẽ gửi mã đặt lại mật khẩu qua SMS tới số "
              "điện thoại đã đăng ký với trạm y tế.",
        "en": "Enter your personal identification number. We will send a reset code by SMS "
              "to the phone number registered with your health station.",
    },
    "account.forgot.sent": {
        "vi": "Nếu số định danh này có tài khoản và số điện thoại đã đăng ký, mã đặt lại mật "
              "khẩu vừa được gửi qua SMS. Mã có hiệu lực {minutes} phút. Không nhận được? Hãy "
              "liên hệ trạm y tế xã của bạn.",
        "en": "If this number has an account and a registered phone, a reset code has just "
              "been sent by SMS. It is valid for {minutes} minutes. Nothing arrived? Contact "
              "your commune health station.",
    },
    "account.reset.intro": {
        "vi": "Nhập số định danh cá nhân, mã vừa nhận qua SMS và mật khẩu mới. Mọi thiết bị "
              "đang đăng nhập sẽ bị đăng xuất.",
        "en": "Enter your personal identification number, the code you received by SMS and a "
              "new password. Every device signed in will be signed out.",
    },
    "account.field.health-id": {
        "vi": "Số định danh cá nhân (12 chữ số)",
        "en": "Personal identification number (12 digits)",
    },
    "account.field.code": {"vi": "Mã (8 chữ số)", "en": "Code (8 digits)"},
    "account.field.code.hint": {
        "vi": "Không chia sẻ mã này với bất kỳ ai, kể cả nhân viên y tế.",
        "en": "Do not share this code with anyone, health staff included.",
    },
    "account.field.password": {"vi": "Mật khẩu mới", "en": "New password"},
    "account.field.password.hint": {
        "vi": "Ít nhất 8 ký tự.",
        "en": "At least 8 characters.",
    },
    "account.field.password-confirm": {
        "vi": "Nhập lại mật khẩu mới",
        "en": "Repeat the new password",
    },
    "account.submit.activate": {"vi": "Kích hoạt", "en": "Activate"},
    "account.submit.forgot": {"vi": "Gửi mã", "en": "Send a code"},
    "account.submit.reset": {"vi": "Đổi mật khẩu", "en": "Change password"},
    "account.code.invalid": {
        "vi": "Mã hoặc số định danh không hợp lệ.",
        "en": "The code or the identification number is not valid.",
    },
    "account.code.has-account": {
        "vi": "Số định danh này đã có tài khoản. Hãy đăng nhập, hoặc đặt lại mật khẩu nếu "
              "bạn quên.",
        "en": "This number already has an account. Sign in, or reset the password if you "
              "forgot it.",
    },
    "account.field.missing": {
        "vi": "Hãy điền đủ các ô.",
        "en": "Fill in every field.",
    },
    "account.health-id.missing": {
        "vi": "Hãy nhập số định danh cá nhân.",
        "en": "Enter your personal identification number.",
    },
    "account.password.mismatch": {
        "vi": "Hai mật khẩu không giống nhau.",
        "en": "The two passwords differ.",
    },
    "account.done.activated": {
        "vi": "Tài khoản của bạn đã được kích hoạt. Bạn có thể đăng nhập bằng số định danh "
              "cá nhân và mật khẩu vừa chọn.",
        "en": "Your account is active. Sign in with your personal identification number and "
              "the password you chose.",
    },
    "account.done.password-reset": {
        "vi": "Mật khẩu đã được đổi và mọi thiết bị đã bị đăng xuất. Hãy đăng nhập lại bằng "
              "mật khẩu mới.",
        "en": "Your password is changed and every device was signed out. Sign in again with "
              "the new password.",
    },
}

# The access log's sentence for a station issuing a code ("Trạm Y tế X đã cấp mã kích hoạt
# cho tài khoản của bạn"); consent/access_log.py composes it from these keys.
ACCESS_LOG = {
    "access-log.done.activation-code": {
        "vi": "đã cấp mã kích hoạt cho",
        "en": "issued an activation code for",
    },
    "access-log.attempt.activation-code": {
        "vi": "cấp mã kích hoạt cho",
        "en": "issue an activation code for",
    },
    "access-log.section.account": {"vi": "tài khoản", "en": "account"},
}

register_messages({**PROBLEMS, **PAGES, **ACCESS_LOG})
