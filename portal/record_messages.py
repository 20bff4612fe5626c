"""Messages of the record pages: home, trend chart, vaccinations, measurement and dose forms,
export and share by QR code."""

from core.i18n import register_messages

_MONTHS_EN = ("January", "February", "March", "April", "May", "June", "July", "August",
              "September", "October", "November", "December")

register_messages({
    f"portal.record.month.{number}": {"vi": f"tháng {number}", "en": name}
    for number, name in enumerate(_MONTHS_EN, start=1)
})

register_messages({
    # Shared words
    "portal.record.none": {"vi": "Không có.", "en": "None."},
    "portal.record.cancel": {"vi": "Hủy", "en": "Cancel"},
    "portal.record.back-home": {"vi": "Về trang tổng quan", "en": "Back to the summary"},
    "portal.record.sensitive": {"vi": "Thông tin nhạy cảm", "en": "Sensitive"},
    "portal.record.form.for": {"vi": "Hồ sơ của: {name}", "en": "Record of: {name}"},
    "portal.record.form.fix": {"vi": "Chưa lưu được. Hãy sửa các mục được đánh dấu bên dưới.",
                               "en": "Not saved yet. Please correct the fields marked below."},
    "portal.record.unit.per-minute": {"vi": "lần/phút", "en": "/min"},
    "portal.record.no-record.title": {"vi": "Chưa có hồ sơ", "en": "No record yet"},
    "portal.record.no-record.detail": {
        "vi": "Tài khoản này chưa gắn với hồ sơ sức khỏe nào. Hãy liên hệ trạm y tế xã.",
        "en": "This account is not linked to a health record yet. Please contact your "
              "commune health station.",
    },
    "portal.record.table.kind": {"vi": "Chỉ số", "en": "Measurement"},
    "portal.record.table.value": {"vi": "Giá trị", "en": "Value"},
    "portal.record.table.when": {"vi": "Thời gian đo", "en": "Measured at"},
    "portal.record.table.where": {"vi": "Nơi đo", "en": "Where"},
    "portal.record.kind.blood-pressure": {"vi": "Huyết áp", "en": "Blood pressure"},
    "portal.record.kind.blood-glucose": {"vi": "Đường huyết (glucose máu)",
                                         "en": "Blood glucose"},
    "portal.record.method.home": {"vi": "Tại nhà", "en": "At home"},
    "portal.record.method.clinic": {"vi": "Tại cơ sở y tế", "en": "At a health facility"},
    "portal.record.method.device": {"vi": "Thiết bị tự ghi", "en": "Recording device"},
    "portal.record.method.unknown": {"vi": "Không ghi", "en": "Not stated"},

    # Confirmations after a form (?done=...)
    "portal.record.done.measurement": {"vi": "Đã lưu chỉ số. Biểu đồ bên dưới đã cập nhật.",
                                       "en": "Measurement saved. The chart below is updated."},
    "portal.record.done.dose": {
        "vi": "Đã lưu mũi tiêm. Mũi này ở trạng thái chưa xác nhận cho đến khi trạm y tế "
              "đối chiếu sổ tiêm chủng.",
        "en": "Dose saved. It stays unverified until the health station checks the "
              "vaccination book.",
    },
    "portal.record.done.revoked": {"vi": "Đã thu hồi liên kết chia sẻ. Không ai mở được nữa.",
                                   "en": "The share link is revoked. No one can open it now."},

    # Home
    "portal.record.home.title": {"vi": "Hồ sơ sức khỏe", "en": "Health record"},
    "portal.record.home.born": {"vi": "Ngày sinh: {date}", "en": "Born {date}"},
    "portal.record.home.vaccinations": {"vi": "Tiêm chủng", "en": "Vaccinations"},
    "portal.record.home.overdue-count": {"vi": "Quá hạn: {n} mũi", "en": "Overdue doses: {n}"},
    "portal.record.home.due-count": {"vi": "Đến lịch: {n} mũi", "en": "Doses due: {n}"},
    "portal.record.home.next-due": {"vi": "Mũi tiếp theo:", "en": "Next dose:"},
    "portal.record.home.nothing-due": {"vi": "Hiện không có mũi nào đến lịch.",
                                       "en": "No dose is due at the moment."},
    "portal.record.home.see-vaccinations": {"vi": "Xem lịch tiêm chủng",
                                            "en": "See the vaccination schedule"},
    "portal.record.home.trend": {"vi": "Huyết áp và đường huyết",
                                 "en": "Blood pressure and glucose"},
    "portal.record.home.trend-caption": {
        "vi": "Các lần đo gần đây, cả tại nhà và tại cơ sở y tế.",
        "en": "Recent readings, at home and at health facilities.",
    },
    "portal.record.home.trend-table": {"vi": "Xem số liệu dạng bảng",
                                       "en": "Show the values as a table"},
    "portal.record.home.trend-latest": {"vi": "Lần đo gần nhất", "en": "Latest readings"},
    "portal.record.home.all-values": {"vi": "Tất cả số liệu của biểu đồ",
                                      "en": "All values of the chart"},
    "portal.record.home.no-trend": {"vi": "Chưa có số liệu huyết áp hoặc đường huyết.",
                                    "en": "No blood pressure or glucose readings yet."},
    "portal.record.home.add-measurement": {"vi": "Thêm chỉ số đo tại nhà",
                                           "en": "Add a home measurement"},
    "portal.record.home.vitals": {"vi": "Chỉ số gần nhất", "en": "Latest measurements"},
    "portal.record.home.conditions": {"vi": "Bệnh đang theo dõi", "en": "Conditions"},
    "portal.record.home.since": {"vi": "Từ {date}", "en": "Since {date}"},
    "portal.record.home.allergies": {"vi": "Dị ứng", "en": "Allergies"},
    "portal.record.home.allergy-high": {"vi": "Nguy hiểm", "en": "High risk"},
    "portal.record.home.medications": {"vi": "Thuốc đang dùng", "en": "Current medicines"},
    "portal.record.home.for": {"vi": "Điều trị: {reason}", "en": "For: {reason}"},
    "portal.record.home.family-doctor": {"vi": "Bác sĩ gia đình", "en": "Family doctor"},

    # The chart
    "portal.record.chart.title": {"vi": "Biểu đồ huyết áp và đường huyết",
                                  "en": "Blood pressure and glucose chart"},
    "portal.record.chart.systolic": {"vi": "Huyết áp tâm thu (mmHg)",
                                     "en": "Systolic pressure (mmHg)"},
    "portal.record.chart.diastolic": {"vi": "Huyết áp tâm trương (mmHg)",
                                      "en": "Diastolic pressure (mmHg)"},
    "portal.record.chart.glucose": {"vi": "Đường huyết (mmol/L)", "en": "Glucose (mmol/L)"},
    "portal.record.chart.right-axis": {"vi": "(thang bên phải)", "en": "(right-hand scale)"},
    "portal.record.chart.no-data": {"vi": "Chưa có số liệu", "en": "No readings yet"},
    "portal.record.chart.alt": {
        "vi": "Biểu đồ huyết áp và đường huyết theo thời gian. Lần đo gần nhất: {latest}.",
        "en": "Chart of blood pressure and glucose over time. Latest readings: {latest}.",
    },
    "portal.record.chart.alt-empty": {"vi": "Biểu đồ huyết áp và đường huyết (chưa có số liệu)",
                                      "en": "Blood pressure and glucose chart (no readings)"},
    "portal.record.measurements.title": {"vi": "Số liệu huyết áp và đường huyết",
                                         "en": "Blood pressure and glucose readings"},

    # Adding a measurement
    "portal.record.measure.title": {"vi": "Thêm chỉ số đo tại nhà",
                                    "en": "Add a home measurement"},
    "portal.record.measure.kind": {"vi": "Bạn đo gì?", "en": "What did you measure?"},
    "portal.record.measure.kind-required": {"vi": "Hãy chọn huyết áp hoặc đường huyết.",
                                            "en": "Choose blood pressure or blood glucose."},
    "portal.record.measure.systolic": {"vi": "Huyết áp tâm thu (số trên, mmHg)",
                                       "en": "Systolic pressure (upper number, mmHg)"},
    "portal.record.measure.diastolic": {"vi": "Huyết áp tâm trương (số dưới, mmHg)",
                                        "en": "Diastolic pressure (lower number, mmHg)"},
    "portal.record.measure.glucose": {"vi": "Chỉ số đường huyết", "en": "Glucose value"},
    "portal.record.measure.unit": {"vi": "Đơn vị", "en": "Unit"},
    "portal.record.measure.when": {"vi": "Thời điểm đo", "en": "When you measured"},
    "portal.record.measure.date": {"vi": "Ngày đo", "en": "Date"},
    "portal.record.measure.time": {"vi": "Giờ đo", "en": "Time"},
    "portal.record.measure.hint": {
        "vi": "Chỉ điền phần của loại chỉ số bạn đã chọn. Chỉ số sẽ được ghi là tự đo tại nhà.",
        "en": "Fill in only the part for the kind you chose. It is recorded as measured at "
              "home by you.",
    },
    "portal.record.measure.save": {"vi": "Lưu chỉ số", "en": "Save measurement"},

    # Vaccinations
    "portal.record.vacc.title": {"vi": "Tiêm chủng", "en": "Vaccinations"},
    "portal.record.vacc.completed-count": {"vi": "Đã tiêm: {n} mũi", "en": "Doses given: {n}"},
    "portal.record.vacc.group.attention": {"vi": "Cần tiêm", "en": "To be given now"},
    "portal.record.vacc.group.upcoming": {"vi": "Sắp tới", "en": "Coming up"},
    "portal.record.vacc.group.completed": {"vi": "Đã tiêm đủ", "en": "Completed"},
    "portal.record.vacc.group.missed": {"vi": "Đã quá tuổi tiêm", "en": "Past the age limit"},
    "portal.record.vacc.no-schedule": {
        "vi": "Chương trình tiêm chủng mở rộng không có mũi nào theo lịch cho người này.",
        "en": "The expanded immunization programme has no scheduled dose for this person.",
    },
    "portal.record.vacc.adult": {"vi": "Mũi tiêm khuyến cáo cho người lớn",
                                 "en": "Recommended adult doses"},
    "portal.record.vacc.given": {"vi": "Các mũi đã tiêm", "en": "Doses given"},
    "portal.record.vacc.none-given": {"vi": "Chưa có mũi tiêm nào được ghi.",
                                      "en": "No dose recorded yet."},
    "portal.record.vacc.dose-number": {"vi": "mũi {n}", "en": "dose {n}"},
    "portal.record.vacc.given-on": {"vi": "Ngày tiêm: {date}", "en": "Given on {date}"},
    "portal.record.vacc.verified": {"vi": "Đã xác nhận", "en": "Verified"},
    "portal.record.vacc.unverified": {"vi": "Chưa xác nhận", "en": "Unverified"},
    "portal.record.vacc.unverified-hint": {
        "vi": "Bạn tự khai từ sổ tiêm; trạm y tế sẽ đối chiếu rồi xác nhận.",
        "en": "Reported by you from the book; the health station will check and verify it.",
    },
    "portal.record.vacc.add-dose": {"vi": "Thêm mũi đã tiêm từ sổ tiêm chủng",
                                    "en": "Add a past dose from the vaccination book"},

    # A scheduled dose in words
    "portal.record.dose.overdue": {"vi": "Quá hạn từ {date}", "en": "Overdue since {date}"},
    "portal.record.dose.due": {"vi": "Đến lịch tiêm, nên tiêm trước {date}",
                               "en": "Due now; best given before {date}"},
    "portal.record.dose.due-soon": {"vi": "Sắp đến lịch: {date}", "en": "Due soon: {date}"},
    "portal.record.dose.upcoming": {"vi": "Dự kiến từ {date}", "en": "Expected from {date}"},
    "portal.record.dose.completed": {"vi": "Đã tiêm ngày {date}", "en": "Given on {date}"},
    "portal.record.dose.missed": {"vi": "Đã quá tuổi tiêm từ {date}",
                                  "en": "Missed: past the age limit since {date}"},
    "portal.record.not-counted.before-minimum-age": {
        "vi": "Mũi tiêm ngày {date} chưa được tính: tiêm trước độ tuổi tối thiểu.",
        "en": "The dose of {date} does not count: given before the minimum age.",
    },
    "portal.record.not-counted.before-minimum-interval": {
        "vi": "Mũi tiêm ngày {date} chưa được tính: tiêm quá sớm sau mũi trước.",
        "en": "The dose of {date} does not count: given too soon after the previous one.",
    },
    "portal.record.not-counted.missing-antigens": {
        "vi": "Mũi tiêm ngày {date} chưa được tính: vắc xin không đủ thành phần cho mũi này.",
        "en": "The dose of {date} does not count: the vaccine lacks a component of this dose.",
    },
    "portal.record.not-counted.past-maximum-age": {
        "vi": "Mũi tiêm ngày {date} chưa được tính: tiêm khi đã quá tuổi.",
        "en": "The dose of {date} does not count: given past the age limit.",
    },
    "portal.record.not-counted.counted-for-another-dose": {
        "vi": "Mũi tiêm ngày {date} đã được tính cho một mũi khác.",
        "en": "The dose of {date} already counts for another dose.",
    },
    "portal.record.not-counted.unverified": {
        "vi": "Mũi tiêm ngày {date} bạn tự khai sẽ được tính khi trạm y tế xác nhận.",
        "en": "The dose of {date} you reported will count once the health station verifies "
              "it.",
    },
    "portal.record.not-counted.other": {
        "vi": "Mũi tiêm ngày {date} chưa được tính cho mũi này.",
        "en": "The dose of {date} does not count for this dose.",
    },

    # Adding a past dose
    "portal.record.dose.title": {"vi": "Thêm mũi đã tiêm từ sổ tiêm chủng",
                                 "en": "Add a past dose from the vaccination book"},
    "portal.record.dose.lead": {
        "vi": "Ghi lại một mũi tiêm có trong sổ tiêm chủng giấy nhưng chưa có trong hồ sơ.",
        "en": "Record a dose written in the paper vaccination book that is missing from the "
              "record.",
    },
    "portal.record.dose.vaccine": {"vi": "Vắc xin", "en": "Vaccine"},
    "portal.record.dose.choose": {"vi": "— Chọn vắc xin —", "en": "— Choose a vaccine —"},
    "portal.record.dose.date": {"vi": "Ngày tiêm", "en": "Date given"},
    "portal.record.dose.number": {"vi": "Mũi thứ mấy", "en": "Dose number"},
    "portal.record.dose.lot": {"vi": "Số lô vắc xin (nếu sổ có ghi)",
                               "en": "Vaccine lot number (if written in the book)"},
    "portal.record.dose.facility": {"vi": "Nơi tiêm (nếu sổ có ghi)",
                                    "en": "Where it was given (if written in the book)"},
    "portal.record.dose.unverified-hint": {
        "vi": "Mũi tiêm bạn tự khai sẽ ở trạng thái chưa xác nhận và chưa được tính vào lịch "
              "tiêm cho đến khi trạm y tế đối chiếu sổ.",
        "en": "A dose you report stays unverified, and does not count in the schedule, until "
              "the health station checks the book.",
    },
    "portal.record.dose.save": {"vi": "Lưu mũi tiêm", "en": "Save dose"},

    # Export
    "portal.record.export.title": {"vi": "Tải hồ sơ về", "en": "Download the record"},
    "portal.record.export.lead": {
        "vi": "Tải về toàn bộ thông tin sức khỏe đang được lưu về người này.",
        "en": "Download everything held about this person's health.",
    },
    "portal.record.export.json": {"vi": "Tải về (JSON)", "en": "Download (JSON)"},
    "portal.record.export.json-hint": {"vi": "Đầy đủ nhất, dễ đọc bằng máy tính.",
                                       "en": "The most complete; readable by computers."},
    "portal.record.export.fhir": {"vi": "Tải về theo chuẩn HL7 FHIR R4",
                                  "en": "Download as HL7 FHIR R4"},
    "portal.record.export.fhir-hint": {
        "vi": "Dùng để chuyển sang phần mềm y tế khác.",
        "en": "For moving the record into other health software.",
    },
    "portal.record.export.care": {
        "vi": "Tệp tải về chứa thông tin sức khỏe. Hãy lưu ở nơi an toàn và không gửi cho "
              "người không cần biết.",
        "en": "The file holds health information. Keep it somewhere safe and do not send it "
              "to anyone who does not need it.",
    },
    "portal.record.export.filename": {"vi": "ho-so-suc-khoe", "en": "health-record"},

    # Share by QR code
    "portal.record.share.title": {"vi": "Chia sẻ bằng mã QR", "en": "Share by QR code"},
    "portal.record.share.lead": {
        "vi": "Tạo mã QR để bác sĩ hoặc cơ sở y tế xem tóm tắt hồ sơ sức khỏe trong thời "
              "gian ngắn. Bạn có thể thu hồi bất cứ lúc nào.",
        "en": "Make a QR code so a doctor or health facility can see the health summary for a "
              "short time. You can revoke it at any time.",
    },
    "portal.record.share.new": {"vi": "Tạo mã mới", "en": "Make a new code"},
    "portal.record.share.label": {"vi": "Tên gợi nhớ (không bắt buộc)",
                                  "en": "A name to remember it by (optional)"},
    "portal.record.share.expires": {"vi": "Hiệu lực trong", "en": "Valid for"},
    "portal.record.share.hours": {"vi": "{n} giờ", "en": "{n} h"},
    "portal.record.share.passcode": {"vi": "Mã bảo vệ (không bắt buộc)",
                                     "en": "Passcode (optional)"},
    "portal.record.share.passcode-hint": {
        "vi": "Ít nhất 6 ký tự. Người xem phải nhập mã này; hãy nói cho họ biết trực tiếp.",
        "en": "At least 6 characters. The viewer must type it; tell it to them in person.",
    },
    "portal.record.share.single-use": {"vi": "Chỉ cho mở một lần (không dùng cùng mã bảo vệ)",
                                       "en": "Can be opened once only (not with a passcode)"},
    "portal.record.share.create": {"vi": "Tạo mã QR", "en": "Make the QR code"},
    "portal.record.share.created": {"vi": "Mã QR của bạn", "en": "Your QR code"},
    "portal.record.share.qr-alt": {
        "vi": "Mã QR để xem tóm tắt hồ sơ sức khỏe. Đưa cho người cần xem quét.",
        "en": "QR code to view the health summary. Let the viewer scan it.",
    },
    "portal.record.share.until": {"vi": "Hết hạn lúc {when}", "en": "Expires {when}"},
    "portal.record.share.made": {"vi": "Tạo lúc {when}", "en": "Made {when}"},
    "portal.record.share.opened": {"vi": "Đã mở {n} lần", "en": "Opened: {n}"},
    "portal.record.share.single-use-on": {"vi": "chỉ mở một lần", "en": "opens once only"},
    "portal.record.share.passcode-on": {"vi": "có mã bảo vệ", "en": "passcode protected"},
    "portal.record.share.link-label": {"vi": "Hoặc gửi liên kết này:",
                                       "en": "Or send this link:"},
    "portal.record.share.once": {
        "vi": "Mã QR và liên kết chỉ hiện một lần, ngay bây giờ. Ai có chúng đều xem được "
              "tóm tắt hồ sơ cho đến khi hết hạn hoặc bị thu hồi.",
        "en": "The QR code and link are shown only this once. Whoever has them can see the "
              "summary until it expires or is revoked.",
    },
    "portal.record.share.list": {"vi": "Các mã đã tạo", "en": "Codes you made"},
    "portal.record.share.none": {"vi": "Chưa tạo mã nào.", "en": "No codes yet."},
    "portal.record.share.no-label": {"vi": "Không tên", "en": "Unnamed"},
    "portal.record.share.revoke": {"vi": "Thu hồi", "en": "Revoke"},
    "portal.record.share.status.active": {"vi": "Đang hiệu lực", "en": "Active"},
    "portal.record.share.status.expired": {"vi": "Đã hết hạn", "en": "Expired"},
    "portal.record.share.status.revoked": {"vi": "Đã thu hồi", "en": "Revoked"},
    "portal.record.share.status.spent": {"vi": "Đã được mở", "en": "Used"},
    "portal.record.share.status.locked": {"vi": "Đã khóa do nhập sai mã",
                                          "en": "Locked after wrong passcodes"},
})
