"""Messages of the login through an external OpenID provider (VNeID): the button, the errors."""

from core.i18n import register_messages

PAGES = {
    "external.login.or": {"vi": "hoặc", "en": "or"},
    "external.login.button": {"vi": "Đăng nhập bằng {name}", "en": "Sign in with {name}"},
}

PROBLEMS = {
    "problem.external-login-invalid-next.title": {
        "vi": "Liên kết đăng nhập không hợp lệ",
        "en": "Invalid sign-in link",
    },
    "problem.external-login-invalid-next.detail": {
        "vi": "Liên kết đăng nhập này không hợp lệ. Hãy quay lại ứng dụng và đăng nhập lại.",
        "en": "This sign-in link is not valid. Go back to the application and sign in again.",
    },
    "problem.external-login-expired.title": {
        "vi": "Phiên đăng nhập đã hết hạn",
        "en": "Sign-in expired",
    },
    "problem.external-login-expired.detail": {
        "vi": "Việc đăng nhập bằng {name} đã quá lâu hoặc được bắt đầu trên một trình duyệt "
              "khác. Hãy quay lại ứng dụng và đăng nhập lại.",
        "en": "Signing in with {name} took too long or was started in another browser. "
              "Go back to the application and sign in again.",
    },
    "problem.external-login-cancelled.title": {
        "vi": "Chưa đăng nhập được",
        "en": "Not signed in",
    },
    "problem.external-login-cancelled.detail": {
        "vi": "{name} không xác nhận việc đăng nhập (có thể bạn đã hủy). Hãy thử lại, hoặc "
              "đăng nhập bằng số định danh cá nhân và mật khẩu.",
        "en": "{name} did not confirm the sign-in (perhaps you cancelled). Try again, or sign "
              "in with your personal identification number and password.",
    },
    "problem.external-provider-unavailable.title": {
        "vi": "{name} tạm thời không trả lời",
        "en": "{name} is not answering",
    },
    "problem.external-provider-unavailable.detail": {
        "vi": "Không liên lạc được với {name}. Hãy thử lại sau ít phút, hoặc đăng nhập bằng "
              "số định danh cá nhân và mật khẩu.",
        "en": "{name} could not be reached. Try again in a few minutes, or sign in with your "
              "personal identification number and password.",
    },
    "problem.external-login-failed.title": {
        "vi": "Không xác minh được đăng nhập",
        "en": "Sign-in could not be verified",
    },
    "problem.external-login-failed.detail": {
        "vi": "Không xác minh được thông tin đăng nhập nhận từ {name}, nên bạn chưa được đăng "
              "nhập. Hãy thử lại, hoặc đăng nhập bằng số định danh cá nhân và mật khẩu.",
        "en": "The sign-in received from {name} could not be verified, so you are not signed "
              "in. Try again, or sign in with your personal identification number and "
              "password.",
    },
    "problem.external-pin-unverified.title": {
        "vi": "Số định danh chưa được xác thực",
        "en": "Identification number not verified",
    },
    "problem.external-pin-unverified.detail": {
        "vi": "{name} chưa xác thực số định danh cá nhân của bạn, nên không dùng được để mở "
              "hồ sơ sức khỏe. Hãy đăng nhập bằng số định danh cá nhân và mật khẩu.",
        "en": "{name} has not verified your personal identification number, so it cannot "
              "open a health record. Sign in with your personal identification number and "
              "password.",
    },
    "problem.external-no-record.title": {
        "vi": "Chưa có hồ sơ sức khỏe của bạn",
        "en": "No health record for you yet",
    },
    "problem.external-no-record.detail": {
        "vi": "Chưa có hồ sơ sức khỏe điện tử nào mang số định danh cá nhân của bạn. Trạm y "
              "tế xã, phường nơi bạn sinh sống sẽ lập hồ sơ cho bạn: hãy mang căn cước đến "
              "trạm.",
        "en": "There is no electronic health record with your personal identification number "
              "yet. The health station of your commune or ward registers you: bring your "
              "identity card to the station.",
    },
    "problem.external-identity-mismatch.title": {
        "vi": "Không thể đăng nhập bằng tài khoản này",
        "en": "This account cannot sign you in",
    },
    "problem.external-identity-mismatch.detail": {
        "vi": "Tài khoản {name} này không khớp với hồ sơ đã liên kết trước đây. Để bảo vệ hồ "
              "sơ sức khỏe, việc đăng nhập bị từ chối; hãy liên hệ trạm y tế xã, phường.",
        "en": "This {name} account does not match the record it was linked to before. To "
              "protect health records the sign-in is refused; contact your commune health "
              "station.",
    },
    "problem.external-account-disabled.title": {
        "vi": "Tài khoản đã bị khóa",
        "en": "Account disabled",
    },
    "problem.external-account-disabled.detail": {
        "vi": "Tài khoản sổ sức khỏe của bạn đã bị khóa. Hãy liên hệ trạm y tế xã, phường.",
        "en": "Your health record account is disabled. Contact your commune health station.",
    },
}

register_messages(PAGES)
register_messages(PROBLEMS)
