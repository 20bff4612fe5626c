"""Messages of the record layer (validation and problems), Vietnamese and English."""

from core.i18n import register_messages

register_messages({
    "record.date-in-future": {"vi": "Ngày không được ở tương lai.",
                              "en": "The date must not be in the future."},
    "record.date-before-birth": {"vi": "Ngày không được trước ngày sinh.",
                                 "en": "The date must not be before the date of birth."},
    "record.date-order": {"vi": "Ngày kết thúc phải sau ngày bắt đầu.",
                          "en": "The end date must be after the start date."},
    "record.icd10-unknown": {"vi": "Mã ICD-10 không có trong danh mục.",
                             "en": "The ICD-10 code is not in the code list."},
    "record.vaccine-unknown": {"vi": "Mã vắc xin không có trong danh mục.",
                               "en": "The vaccine code is not in the catalogue."},
    "record.expired-vaccine": {"vi": "Lô vắc xin đã hết hạn vào ngày tiêm.",
                               "en": "The vaccine lot had expired on the date given."},
    "record.practitioner-unknown": {"vi": "Không tìm thấy nhân viên y tế này.",
                                    "en": "No such practitioner."},
    "record.facility-unknown": {"vi": "Không tìm thấy cơ sở y tế này.",
                                "en": "No such facility."},
    "record.observation-value-required": {
        "vi": "Cần có giá trị và đơn vị đo.", "en": "A value and a unit are required."},
    "record.observation-bp-required": {
        "vi": "Huyết áp cần có cả tâm thu và tâm trương.",
        "en": "Blood pressure needs both systolic and diastolic values."},
    "record.observation-bp-only": {
        "vi": "Chỉ dùng cho loại chỉ số huyết áp.",
        "en": "Only allowed for blood-pressure observations."},
    "record.restricted-label-citizen": {
        "vi": "Chỉ được dùng nhãn nhạy cảm hợp lệ.", "en": "Use a valid sensitivity label."},
    "record.entered-in-error": {
        "vi": "Mục này đã được đánh dấu nhập nhầm và không thể sửa.",
        "en": "This entry was marked entered-in-error and cannot be changed."},
    "record.invalid-sensitivity": {"vi": "Nhãn nhạy cảm phải là một trong: {choices}.",
                                   "en": "The sensitivity label must be one of: {choices}."},
    "record.invalid-source": {
        "vi": "Nguồn dữ liệu được xác định theo người ghi; chỉ bác sĩ được ghi 'imported'.",
        "en": "The source follows from who writes; only a clinician may set 'imported'."},
    "record.unknown-field": {"vi": "Trường không được phép.", "en": "Unknown field."},
    "record.invalid-uuid": {"vi": "Mã định danh (UUID) không hợp lệ.", "en": "Not a valid UUID."},
    "record.lookup-health-id": {"vi": "Số định danh cá nhân phải gồm đúng 12 chữ số.",
                                "en": "The personal identification number must be 12 digits."},
    "record.field-station-only": {
        "vi": "Thông tin nhân thân chỉ được sửa tại trạm y tế; bạn có thể sửa thông tin liên hệ.",
        "en": "Identity data is corrected at a health station; you may change contact details."},
    "record.field-citizen-only": {
        "vi": "Thông tin liên hệ do chính người dân sửa; trạm y tế chỉ sửa thông tin nhân thân.",
        "en": "Contact details are changed by the person; a station corrects identity data."},
    "record.not-a-family-doctor": {
        "vi": "Người này không phải là bác sĩ đang làm việc tại cơ sở đã chọn.",
        "en": "This person is not a doctor currently working at the chosen facility."},
    "record.batch-item-object": {"vi": "Mỗi mục phải là một đối tượng JSON.",
                                  "en": "Each item must be a JSON object."},
    "record.batch-client-item-id": {
        "vi": "client_item_id là chuỗi bắt buộc, dài 1–64 ký tự.",
        "en": "client_item_id is required: a string of 1–64 characters."},
    "record.batch-items": {"vi": "items phải là danh sách từ 1 đến {max} mục.",
                           "en": "items must be a list of 1 to {max} entries."},
    "record.source-fixed": {"vi": "Không thể đổi nguồn dữ liệu của một mục đã ghi.",
                            "en": "The source of an entry cannot be changed."},
    "record.number-required": {"vi": "Giá trị phải là một số.",
                               "en": "The value must be a number."},
    "record.reason-required": {"vi": "Cần nêu lý do.", "en": "A reason is required."},
    "record.citizen-unknown": {"vi": "Không tìm thấy công dân này.",
                               "en": "No such citizen."},
    "record.batch-too-large": {"vi": "Một lô tối đa {max} mục.",
                               "en": "A batch holds at most {max} items."},
    "record.duplicate-client-item-id": {
        "vi": "client_item_id bị lặp trong cùng lô.",
        "en": "client_item_id is repeated within the batch."},
    "record.health-id-taken": {"vi": "Số định danh này đã được đăng ký.",
                               "en": "This health ID is already registered."},
    "record.erased": {"vi": "Dữ liệu của người này đã bị xóa theo yêu cầu.",
                      "en": "This person's data has been erased on request."},
    "problem.section-forbidden.title": {"vi": "Không có quyền xem mục này",
                                        "en": "Section not allowed"},
    "problem.section-forbidden.detail": {
        "vi": "Bạn không có quyền truy cập mục này của hồ sơ sức khỏe.",
        "en": "You are not allowed to access this section of the health record."},
})


def _register_reference_messages() -> None:
    from registry.reference.observations import OBSERVATION_MESSAGES

    register_messages({f"observation.{code}": texts for code, texts in
                       OBSERVATION_MESSAGES.items()})


_register_reference_messages()
