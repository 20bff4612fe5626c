"""Messages of the infrastructure layer (problem titles and details)."""

from core.i18n import register_messages

MESSAGES = {
    "problem.bad-request.title": {"vi": "Yêu cầu không hợp lệ", "en": "Bad request"},
    "problem.bad-request.detail": {
        "vi": "Máy chủ không hiểu yêu cầu này.",
        "en": "The server could not understand this request.",
    },
    "problem.malformed-json.title": {"vi": "JSON không hợp lệ", "en": "Malformed JSON"},
    "problem.malformed-json.detail": {
        "vi": "Nội dung yêu cầu không phải là JSON hợp lệ.",
        "en": "The request body is not valid JSON.",
    },
    "problem.json-object-required.detail": {
        "vi": "Nội dung yêu cầu phải là một đối tượng JSON.",
        "en": "The request body must be a JSON object.",
    },
    "problem.json-too-deep.detail": {
        "vi": "JSON lồng nhau quá sâu (tối đa {limit} cấp mảng hoặc đối tượng).",
        "en": "The JSON nests too deeply (at most {limit} levels of arrays or objects).",
    },
    "problem.json-duplicate-key.detail": {
        "vi": "Một đối tượng JSON có tên trường lặp lại; mỗi tên chỉ được xuất hiện một lần.",
        "en": "A JSON object repeats a member name; each name may appear only once.",
    },
    "problem.json-not-a-number.detail": {
        "vi": "JSON không chấp nhận NaN, Infinity hay số vượt quá phạm vi số thực.",
        "en": "JSON does not allow NaN, Infinity or numbers beyond the range of a double.",
    },
    "problem.unauthorized.title": {"vi": "Chưa xác thực", "en": "Unauthorized"},
    "problem.unauthorized.detail": {
        "vi": "Cần có mã truy cập hợp lệ.",
        "en": "A valid access token is required.",
    },
    "problem.forbidden.title": {"vi": "Không có quyền", "en": "Forbidden"},
    "problem.forbidden.detail": {
        "vi": "Bạn không có quyền thực hiện thao tác này.",
        "en": "You are not allowed to do this.",
    },
    "problem.not-found.title": {"vi": "Không tìm thấy", "en": "Not found"},
    "problem.not-found.detail": {
        "vi": "Không tìm thấy tài nguyên được yêu cầu.",
        "en": "The requested resource was not found.",
    },
    "problem.method-not-allowed.title": {
        "vi": "Phương thức không được hỗ trợ",
        "en": "Method not allowed",
    },
    "problem.method-not-allowed.detail": {
        "vi": "Đường dẫn này không hỗ trợ phương thức {method}.",
        "en": "This path does not support the {method} method.",
    },
    "problem.conflict.title": {"vi": "Xung đột", "en": "Conflict"},
    "problem.conflict.detail": {
        "vi": "Yêu cầu xung đột với trạng thái hiện tại của dữ liệu.",
        "en": "The request conflicts with the current state of the data.",
    },
    "problem.precondition-failed.title": {
        "vi": "Dữ liệu đã thay đổi",
        "en": "Precondition failed",
    },
    "problem.precondition-failed.detail": {
        "vi": "Dữ liệu đã bị thay đổi kể từ khi bạn tải về; hãy tải lại rồi thử lại.",
        "en": "The data changed since you fetched it; fetch it again and retry.",
    },
    "problem.payload-too-large.title": {"vi": "Nội dung quá lớn", "en": "Payload too large"},
    "problem.payload-too-large.detail": {
        "vi": "Nội dung yêu cầu vượt quá giới hạn {limit} byte.",
        "en": "The request body exceeds the limit of {limit} bytes.",
    },
    "problem.unsupported-media-type.title": {
        "vi": "Kiểu nội dung không được hỗ trợ",
        "en": "Unsupported media type",
    },
    "problem.unsupported-media-type.detail": {
        "vi": "Nội dung phải có Content-Type: application/json.",
        "en": "The body must be sent with Content-Type: application/json.",
    },
    "problem.validation-error.title": {
        "vi": "Dữ liệu không hợp lệ",
        "en": "Validation failed",
    },
    "problem.validation-error.detail": {
        "vi": "Một số trường không hợp lệ; xem chi tiết trong errors.",
        "en": "Some fields are invalid; see errors for details.",
    },
    "problem.precondition-required.title": {
        "vi": "Thiếu điều kiện If-Match",
        "en": "Precondition required",
    },
    "problem.precondition-required.detail": {
        "vi": "Cập nhật cần tiêu đề If-Match với ETag của phiên bản bạn đang sửa.",
        "en": "Updates need an If-Match header with the ETag of the version you edit.",
    },
    "problem.request-header-fields-too-large.title": {
        "vi": "Tiêu đề yêu cầu quá lớn",
        "en": "Request header fields too large",
    },
    "problem.request-header-fields-too-large.detail": {
        "vi": "Mỗi tiêu đề HTTP tối đa {field_limit} byte và tổng các tiêu đề tối đa "
              "{total_limit} byte.",
        "en": "Each HTTP header field may hold at most {field_limit} bytes, and all of them "
              "together {total_limit} bytes.",
    },
    "problem.too-many-requests.title": {"vi": "Quá nhiều yêu cầu", "en": "Too many requests"},
    "problem.too-many-requests.detail": {
        "vi": "Bạn đã gửi quá nhiều yêu cầu; hãy thử lại sau {retry_after} giây.",
        "en": "Too many requests; try again in {retry_after} seconds.",
    },
    "problem.internal-error.title": {"vi": "Lỗi hệ thống", "en": "Internal error"},
    "problem.internal-error.detail": {
        "vi": "Lỗi hệ thống. Mã yêu cầu: {request_id}.",
        "en": "Internal error. Request id: {request_id}.",
    },
    "problem.service-unavailable.title": {
        "vi": "Dịch vụ tạm thời không sẵn sàng",
        "en": "Service unavailable",
    },
    "problem.service-unavailable.detail": {
        "vi": "Dịch vụ tạm thời không sẵn sàng; hãy thử lại sau.",
        "en": "The service is temporarily unavailable; try again later.",
    },
    "problem.database-unavailable.detail": {
        "vi": "Cơ sở dữ liệu tạm thời không phản hồi; hãy thử lại sau {retry_after} giây.",
        "en": "The database is not answering for the moment; try again in {retry_after} "
              "seconds.",
    },
    "problem.not-ready.detail": {
        "vi": "Dịch vụ chưa sẵn sàng: {reason}.",
        "en": "The service is not ready: {reason}.",
    },
    "ready.database-unreachable": {
        "vi": "không kết nối được cơ sở dữ liệu",
        "en": "the database is unreachable",
    },
    "ready.migrations-behind": {
        "vi": "cơ sở dữ liệu chưa được nâng cấp lên phiên bản mới nhất",
        "en": "the database schema is not at the latest migration",
    },
}

register_messages(MESSAGES)

register_messages({
    "problem.invalid-cursor.title": {"vi": "Con trỏ phân trang không hợp lệ",
                                     "en": "Invalid cursor"},
    "problem.invalid-cursor.detail": {
        "vi": "Tham số cursor không hợp lệ hoặc đã bị sửa; hãy bắt đầu lại từ trang đầu.",
        "en": "The cursor is invalid or was altered; start again from the first page.",
    },
    "problem.invalid-limit.title": {"vi": "Giới hạn không hợp lệ", "en": "Invalid limit"},
    "problem.invalid-limit.detail": {
        "vi": "Tham số limit phải là số nguyên từ 1 đến {max}.",
        "en": "The limit parameter must be an integer from 1 to {max}.",
    },
    "problem.invalid-timestamp.title": {"vi": "Thời điểm không hợp lệ",
                                        "en": "Invalid timestamp"},
    "problem.invalid-timestamp.detail": {
        "vi": "Tham số {name} phải là thời điểm RFC 3339 có múi giờ, "
              "ví dụ 2026-01-31T08:00:00+07:00.",
        "en": "The {name} parameter must be an RFC 3339 timestamp with offset, "
              "e.g. 2026-01-31T08:00:00+07:00.",
    },
    "problem.invalid-fields.title": {"vi": "Tham số fields không hợp lệ",
                                     "en": "Invalid fields parameter"},
    "problem.invalid-fields.detail": {
        "vi": "Tham số fields có tên trường không tồn tại: {names}.",
        "en": "The fields parameter names unknown fields: {names}.",
    },
    "problem.idempotency-key-reused.title": {"vi": "Khóa Idempotency-Key đã được dùng",
                                             "en": "Idempotency key reused"},
    "problem.idempotency-key-reused.detail": {
        "vi": "Khóa Idempotency-Key này đã được dùng cho một yêu cầu khác.",
        "en": "This Idempotency-Key was already used for a different request.",
    },
    "validation.unpaired-surrogate": {
        "vi": "Chứa ký tự Unicode không hợp lệ (nửa cặp thay thế UTF-16 bị tách rời).",
        "en": "Contains an invalid Unicode character (an unpaired UTF-16 surrogate).",
    },
    "problem.invalid-idempotency-key.title": {"vi": "Idempotency-Key không hợp lệ",
                                              "en": "Invalid Idempotency-Key"},
    "problem.invalid-idempotency-key.detail": {
        "vi": "Idempotency-Key phải dài 8–128 ký tự chữ, số hoặc -_.:",
        "en": "The Idempotency-Key must be 8–128 letters, digits or -_.:",
    },
})
