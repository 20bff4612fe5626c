"""Texts of the FHIR transaction's refusals (vi/en): each names what is wrong with one element
of the Bundle, never a value it holds."""

from core.i18n import register_messages

register_messages({
    "fhir.in.not-a-bundle": {
        "vi": "Nội dung phải là một tài nguyên Bundle.",
        "en": "The body must be a Bundle resource."},
    "fhir.in.transaction-only": {
        "vi": "Chỉ nhận Bundle loại transaction.",
        "en": "Only a Bundle of type transaction is accepted."},
    "fhir.in.entry-count": {
        "vi": "Bundle phải có từ 1 đến {max} mục.",
        "en": "A Bundle holds 1 to {max} entries."},
    "fhir.in.required": {
        "vi": "Thiếu thành phần bắt buộc.", "en": "A required element is missing."},
    "fhir.in.type-not-supported": {
        "vi": "Loại tài nguyên không được nhận ở đây (nhận: {types}, Patient).",
        "en": "This resource type is not accepted here (accepted: {types}, Patient)."},
    "fhir.in.element-not-supported": {
        "vi": "Hồ sơ không lưu được thành phần này; hãy bỏ nó đi thay vì để nó bị mất âm thầm.",
        "en": "The record cannot keep this element; leave it out rather than have it dropped "
              "silently."},
    "fhir.in.post-only": {
        "vi": "Mỗi mục phải là một yêu cầu tạo có điều kiện (POST).",
        "en": "Each entry must be a conditional create (POST)."},
    "fhir.in.request-url": {
        "vi": "request.url phải là {type}.",
        "en": "request.url must be {type}."},
    "fhir.in.if-none-exist": {
        "vi": "Cần ifNoneExist dạng identifier=<hệ thống>|<giá trị>, theo mã của chính cơ sở.",
        "en": "ifNoneExist must read identifier=<system>|<value>, the facility's own "
              "identifier."},
    "fhir.in.identifier-match": {
        "vi": "Tài nguyên phải mang đúng mã định danh nêu trong ifNoneExist.",
        "en": "The resource must carry the identifier named in ifNoneExist."},
    "fhir.in.patient-by-id": {
        "vi": "Người bệnh phải được xác định bằng số định danh cá nhân "
              "(https://moh.gov.vn/fhir/sid/cccd), hoặc một mục Patient trong Bundle mang số đó.",
        "en": "The person must be identified by their personal identification number "
              "(https://moh.gov.vn/fhir/sid/cccd), or by a Patient entry of the Bundle "
              "carrying it."},
    "fhir.in.person-unknown": {
        "vi": "Không thể ghi vào hồ sơ của người mang số định danh này.",
        "en": "Nothing can be written for the person with this identifier."},
    "fhir.in.status": {
        "vi": "Trạng thái không được nhận (nhận: {allowed}).",
        "en": "This status is not accepted (accepted: {allowed})."},
    "fhir.in.code": {
        "vi": "Mã không thuộc danh mục được nhận.",
        "en": "The code is not one of the accepted codes."},
    "fhir.in.vaccine-system": {
        "vi": "Cần mã vắc xin theo danh mục quốc gia ({system}).",
        "en": "A vaccine code from the national catalogue ({system}) is required."},
    "fhir.in.icd10": {
        "vi": "Cần mã ICD-10 (http://hl7.org/fhir/sid/icd-10).",
        "en": "An ICD-10 code (http://hl7.org/fhir/sid/icd-10) is required."},
    "fhir.in.ucum": {
        "vi": "Đơn vị phải theo UCUM (http://unitsofmeasure.org).",
        "en": "Units must be UCUM (http://unitsofmeasure.org)."},
    "fhir.in.observation-code": {
        "vi": "Mã LOINC này không phải một chỉ số sinh tồn mà hồ sơ ghi nhận.",
        "en": "This LOINC code is not a vital sign the record keeps."},
    "fhir.in.observation-category": {
        "vi": "Chỉ nhận Observation loại vital-signs hoặc laboratory.",
        "en": "Only vital-signs and laboratory Observations are accepted."},
    "fhir.in.result-in-bundle": {
        "vi": "Kết quả phải là một Observation trong cùng Bundle (tham chiếu theo fullUrl).",
        "en": "A result must be an Observation of the same Bundle (referenced by fullUrl)."},
    "fhir.in.result-subject": {
        "vi": "Báo cáo và các kết quả của nó phải cùng một người.",
        "en": "A report and its results must be about the same person."},
    "fhir.in.duplicate": {
        "vi": "Mã định danh này đã xuất hiện ở một mục khác của Bundle.",
        "en": "This identifier is already used by another entry of the Bundle."},
    "fhir.in.forbidden": {
        "vi": "Cơ sở không được ghi mục này vào hồ sơ.",
        "en": "The facility may not write this entry to the record."},
    "fhir.in.system-only": {
        "vi": "Chỉ hệ thống của cơ sở y tế (client credentials) được gửi transaction.",
        "en": "Only a facility's system (client credentials) may send a transaction."},
})
