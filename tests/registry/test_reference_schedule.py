"""The expanded-programme schedule: counting recorded doses and each scheduled dose's status."""

from datetime import date, timedelta

import pytest

from registry.reference.durations import Duration
from registry.reference.schedule import (
    DEFAULT_SCHEDULE,
    DEFAULT_SCHEDULE_ID,
    DOSE_STATUS_LABELS,
    NOT_COUNTED_MESSAGES,
    PREGNANCY_SCHEDULE_ID,
    DoseStatus,
    GivenDose,
    NotCountedReason,
    compute_schedule,
    load_schedule,
    next_due_dose,
    schedule_ids,
)
from registry.reference.vaccines import antigens

BORN = date(2024, 1, 15)


def _at(months: int = 0, days: int = 0) -> date:
    return Duration(months=months).after(BORN) + timedelta(days=days)


def _dose(code: str, when: date, entry_id: str, status: str = "completed") -> GivenDose:
    return GivenDose(vaccine_code=code, occurrence_date=when, entry_id=entry_id, status=status)


def _by_id(doses, today, **kwargs):
    statuses = compute_schedule(date_of_birth=BORN, doses=doses, today=today, **kwargs)
    return {item.item_id: item for item in statuses}


ON_TIME = [
    _dose("HEPB", BORN, "hepb"),
    _dose("BCG", _at(days=3), "bcg"),
    _dose("DTP-HEPB-HIB", _at(2), "penta-1"),
    _dose("BOPV", _at(2), "opv-1"),
    _dose("ROTAVIN-M1", _at(2), "rota-1"),
    _dose("DTP-HEPB-HIB", _at(3), "penta-2"),
    _dose("BOPV", _at(3), "opv-2"),
    _dose("ROTAVIN-M1", _at(3), "rota-2"),
    _dose("DTP-HEPB-HIB", _at(4), "penta-3"),
    _dose("BOPV", _at(4), "opv-3"),
]


def test_newborn_on_day_zero():
    statuses = compute_schedule(date_of_birth=BORN, doses=[], today=BORN)
    by_id = {item.item_id: item for item in statuses}
    assert by_id["hepb-birth"].status == DoseStatus.DUE
    assert by_id["hepb-birth"].due_date == BORN
    assert by_id["hepb-birth"].overdue_date == date(2024, 1, 17)
    assert by_id["hepb-birth"].latest_date == date(2024, 1, 21)
    assert by_id["bcg"].status == DoseStatus.DUE
    assert by_id["dtp-1"].status == DoseStatus.UPCOMING
    assert by_id["dtp-1"].due_date == date(2024, 3, 15)
    assert by_id["dtp-1"].earliest_date == date(2024, 2, 26)  # six weeks
    assert [item.item_id for item in statuses][:3] == ["hepb-birth", "bcg", "dtp-1"]
    assert "rota-3" not in by_id  # the programme's Rotavin-M1 has two doses
    assert next_due_dose(statuses).item_id == "hepb-birth"
    assert all(item.status in (DoseStatus.DUE, DoseStatus.UPCOMING) for item in statuses)


@pytest.mark.parametrize(
    ("today", "hepb_birth", "bcg"),
    [
        (BORN + timedelta(days=1), DoseStatus.DUE, DoseStatus.DUE),
        (BORN + timedelta(days=2), DoseStatus.OVERDUE, DoseStatus.DUE),
        (BORN + timedelta(days=6), DoseStatus.OVERDUE, DoseStatus.DUE),
        (BORN + timedelta(days=7), DoseStatus.MISSED, DoseStatus.DUE),
        (date(2024, 2, 15), DoseStatus.MISSED, DoseStatus.DUE),
        (date(2024, 2, 16), DoseStatus.MISSED, DoseStatus.OVERDUE),
        (date(2025, 1, 14), DoseStatus.MISSED, DoseStatus.OVERDUE),
        (date(2025, 1, 15), DoseStatus.MISSED, DoseStatus.MISSED),
    ],
)
def test_missed_birth_doses_are_overdue_before_they_are_missed(today, hepb_birth, bcg):
    by_id = _by_id([], today)
    assert by_id["hepb-birth"].status == hepb_birth
    assert by_id["bcg"].status == bcg


def test_child_vaccinated_on_time():
    by_id = _by_id(ON_TIME, today=date(2024, 5, 20))
    completed = {key for key, item in by_id.items() if item.status == DoseStatus.COMPLETED}
    assert completed == {
        "hepb-birth",
        "bcg",
        "dtp-1",
        "dtp-2",
        "dtp-3",
        "opv-1",
        "opv-2",
        "opv-3",
        "rota-1",
        "rota-2",
    }
    assert by_id["dtp-2"].completed_entry_ids == ("penta-2",)
    assert by_id["dtp-2"].completed_date == date(2024, 4, 15)
    assert by_id["dtp-2"].completed_vaccine_codes == ("DTP-HEPB-HIB",)
    assert by_id["ipv-1"].status == DoseStatus.UPCOMING
    assert by_id["ipv-1"].due_date == date(2024, 6, 15)
    assert by_id["ipv-1"].due_soon is False
    statuses = list(by_id.values())
    assert next_due_dose(statuses).item_id == "ipv-1"
    assert all(not item.not_counted for item in statuses)


def test_due_soon_within_the_window():
    by_id = _by_id(ON_TIME, today=date(2024, 6, 1))
    assert by_id["ipv-1"].status == DoseStatus.UPCOMING
    assert by_id["ipv-1"].due_soon is True
    by_id = _by_id(ON_TIME, today=date(2024, 6, 15))
    assert by_id["ipv-1"].status == DoseStatus.DUE
    assert by_id["ipv-1"].due_soon is False


def test_late_doses_count_and_move_the_next_due_dates():
    doses = [_dose("DTP-HEPB-HIB", _at(4), "late-1")]
    by_id = _by_id(doses, today=_at(4, 10))
    assert by_id["dtp-1"].status == DoseStatus.COMPLETED
    assert by_id["dtp-1"].due_date == date(2024, 3, 15)  # it was due at 2 months
    assert by_id["dtp-2"].status == DoseStatus.UPCOMING
    assert by_id["dtp-2"].due_date == date(2024, 6, 15)  # one month after the late dose 1
    assert by_id["dtp-2"].earliest_date == date(2024, 6, 12)  # four weeks


def test_missing_doses_are_overdue_and_later_doses_wait():
    today = date(2024, 6, 20)  # five months old, nothing recorded
    by_id = _by_id([], today)
    assert by_id["dtp-1"].status == DoseStatus.OVERDUE
    assert by_id["dtp-1"].overdue_date == date(2024, 4, 16)
    assert by_id["dtp-2"].status == DoseStatus.UPCOMING
    assert by_id["dtp-2"].due_date == date(2024, 7, 20)  # one month after giving dose 1 today
    assert by_id["dtp-3"].due_date == date(2024, 8, 20)
    assert by_id["ipv-1"].status == DoseStatus.DUE
    # Rotavin-M1 must be given before 6 months: still overdue, not yet missed.
    assert by_id["rota-1"].status == DoseStatus.OVERDUE
    assert by_id["rota-1"].latest_date == date(2024, 7, 14)
    # The birth doses are the oldest debt: BCG is still given until the first birthday.
    assert next_due_dose(list(by_id.values())).item_id == "bcg"


def test_rotavirus_is_missed_after_the_product_age_limit():
    by_id = _by_id([], today=date(2024, 7, 15))
    assert by_id["rota-1"].status == DoseStatus.MISSED
    assert by_id["rota-2"].status == DoseStatus.MISSED
    assert by_id["dtp-1"].status == DoseStatus.OVERDUE


def test_dose_before_the_minimum_age_does_not_count():
    early = _dose("DTP-HEPB-HIB", _at(days=35), "too-early")  # five weeks old
    by_id = _by_id([early], today=date(2024, 3, 20))
    dtp_1 = by_id["dtp-1"]
    assert dtp_1.status == DoseStatus.DUE
    assert dtp_1.completed_entry_ids == ()
    assert len(dtp_1.not_counted) == 1
    assert dtp_1.not_counted[0].entry_id == "too-early"
    assert dtp_1.not_counted[0].reason == NotCountedReason.BEFORE_MINIMUM_AGE
    assert dtp_1.not_counted[0].occurrence_date == date(2024, 2, 19)
    # A correct dose afterwards counts as dose 1; the early one stays explained.
    by_id = _by_id([early, _dose("DTP-HEPB-HIB", _at(2), "on-time")], today=date(2024, 3, 20))
    assert by_id["dtp-1"].status == DoseStatus.COMPLETED
    assert by_id["dtp-1"].completed_entry_ids == ("on-time",)
    assert by_id["dtp-1"].not_counted[0].entry_id == "too-early"


def test_measles_before_nine_months_does_not_count():
    doses = [_dose("MEASLES", _at(8), "m-early"), _dose("MR", _at(9, 2), "mr-9m")]
    by_id = _by_id(doses, today=_at(10))
    assert by_id["measles-1"].status == DoseStatus.COMPLETED
    assert by_id["measles-1"].completed_entry_ids == ("mr-9m",)
    assert by_id["measles-1"].not_counted[0].reason == NotCountedReason.BEFORE_MINIMUM_AGE
    assert by_id["measles-2"].status == DoseStatus.UPCOMING


def test_minimum_interval_between_doses_of_a_series():
    doses = [
        _dose("DTP-HEPB-HIB", _at(2), "d1"),
        _dose("DTP-HEPB-HIB", date(2024, 4, 1), "too-soon"),  # 17 days after dose 1
        _dose("DTP-HEPB-HIB", date(2024, 4, 12), "four-weeks"),  # exactly 28 days after
    ]
    by_id = _by_id(doses, today=date(2024, 4, 20))
    dtp_2 = by_id["dtp-2"]
    assert dtp_2.status == DoseStatus.COMPLETED
    assert dtp_2.completed_entry_ids == ("four-weeks",)
    assert [(item.entry_id, item.reason) for item in dtp_2.not_counted] == [
        ("too-soon", NotCountedReason.BEFORE_MINIMUM_INTERVAL)
    ]
    assert by_id["dtp-3"].due_date == date(2024, 5, 15)  # 4 months is later than 12 May + 1 month


def test_combination_vaccine_counts_for_each_antigen():
    hexavalent = [_dose("DTP-HEPB-HIB-IPV", _at(m), f"hexa-{m}") for m in (2, 3, 4)]
    by_id = _by_id(hexavalent, today=_at(4, 5))
    for item_id, entry in [("dtp-1", "hexa-2"), ("dtp-2", "hexa-3"), ("dtp-3", "hexa-4")]:
        assert by_id[item_id].status == DoseStatus.COMPLETED
        assert by_id[item_id].completed_entry_ids == (entry,)
    # The polio component counts for the injected-polio series as well.
    assert by_id["ipv-1"].completed_entry_ids == ("hexa-2",)
    assert by_id["ipv-2"].completed_entry_ids == ("hexa-3",)
    # The programme's oral polio series and the hepatitis B birth dose are separate series.
    assert by_id["opv-1"].status == DoseStatus.OVERDUE
    assert by_id["hepb-birth"].status == DoseStatus.MISSED


def test_doses_given_on_the_same_day_combine():
    same_day = [_dose("DTAP-IPV-HIB", _at(2), "pentaxim"), _dose("HEPB", _at(2), "hepb")]
    by_id = _by_id(same_day, today=_at(2, 3))
    assert by_id["dtp-1"].status == DoseStatus.COMPLETED
    assert by_id["dtp-1"].completed_entry_ids == ("hepb", "pentaxim")
    assert set(by_id["dtp-1"].completed_vaccine_codes) == {"DTAP-IPV-HIB", "HEPB"}


def test_a_dose_lacking_an_antigen_of_the_row_does_not_count():
    by_id = _by_id([_dose("DTAP-IPV-HIB", _at(2), "no-hepb")], today=_at(2, 3))
    dtp_1 = by_id["dtp-1"]
    assert dtp_1.status == DoseStatus.DUE
    assert dtp_1.not_counted[0].reason == NotCountedReason.MISSING_ANTIGENS
    assert dtp_1.not_counted[0].missing_antigens == ("hepb",)

    doses = [_dose("MEASLES", _at(9), "m1"), _dose("MEASLES", _at(18), "m2-no-rubella")]
    by_id = _by_id(doses, today=_at(18, 5))
    assert by_id["measles-1"].status == DoseStatus.COMPLETED
    assert by_id["measles-2"].status == DoseStatus.DUE
    assert by_id["measles-2"].not_counted[0].missing_antigens == ("rubella",)


def test_mmr_counts_as_the_measles_rubella_dose():
    doses = [_dose("MEASLES", _at(9), "m1"), _dose("MMR", _at(12), "mmr")]
    by_id = _by_id(doses, today=_at(13))
    assert by_id["measles-2"].status == DoseStatus.COMPLETED
    assert by_id["measles-2"].completed_entry_ids == ("mmr",)


def test_entered_in_error_doses_are_ignored():
    doses = [
        _dose("DTP-HEPB-HIB", _at(2), "mistake", status="entered-in-error"),
        _dose("BCG", BORN, "not-given", status="not-done"),
    ]
    by_id = _by_id(doses, today=_at(2, 5))
    assert by_id["dtp-1"].status == DoseStatus.DUE
    assert by_id["dtp-1"].not_counted == ()
    assert by_id["bcg"].status == DoseStatus.OVERDUE
    # An erroneous entry does not start the interval for the real dose either.
    doses.append(_dose("DTP-HEPB-HIB", _at(2, 5), "real"))
    by_id = _by_id(doses, today=_at(2, 6))
    assert by_id["dtp-1"].completed_entry_ids == ("real",)


def test_rotavirus_dose_count_follows_the_product():
    rotateq = [_dose("ROTATEQ", _at(2), "rv5-1"), _dose("ROTATEQ", _at(3), "rv5-2")]
    by_id = _by_id(rotateq, today=_at(3, 5))
    assert by_id["rota-3"].status == DoseStatus.UPCOMING
    assert by_id["rota-3"].due_date == date(2024, 5, 15)
    assert by_id["rota-3"].latest_date == BORN + timedelta(weeks=32, days=-1)

    rotarix = [_dose("ROTARIX", _at(2), "rv1-1")]
    by_id = _by_id(rotarix, today=_at(2, 5))
    assert "rota-3" not in by_id
    assert by_id["rota-2"].latest_date == BORN + timedelta(weeks=24, days=-1)

    mixed = [_dose("ROTARIX", _at(2), "rv1-1"), _dose("ROTATEQ", _at(3), "rv5-2")]
    assert "rota-3" in _by_id(mixed, today=_at(3, 5))


def test_japanese_encephalitis_intervals():
    doses = [_dose("JE-INACT", _at(12), "je-1")]
    by_id = _by_id(doses, today=_at(12, 7))
    assert by_id["je-2"].status == DoseStatus.DUE
    assert by_id["je-2"].due_date == date(2025, 1, 22)
    by_id = _by_id(doses, today=_at(12, 15))
    assert by_id["je-2"].status == DoseStatus.OVERDUE
    doses.append(_dose("JE-INACT", date(2025, 1, 25), "je-2"))
    by_id = _by_id(doses, today=date(2025, 2, 1))
    assert by_id["je-3"].status == DoseStatus.UPCOMING
    assert by_id["je-3"].due_date == date(2026, 1, 25)
    # A live JE vaccine is not part of the programme's inactivated series.
    by_id = _by_id([_dose("JE-LIVE", _at(12), "imojev")], today=_at(12, 3))
    assert by_id["je-1"].status == DoseStatus.DUE


def test_td_booster_at_seven_years():
    by_id = _by_id([], today=date(2031, 3, 1))
    assert by_id["td-7y"].status == DoseStatus.DUE
    assert by_id["td-7y"].due_date == date(2031, 1, 15)
    assert _by_id([], today=date(2032, 1, 16))["td-7y"].status == DoseStatus.OVERDUE
    early_td = [_dose("TD", date(2030, 12, 1), "td-6y")]
    by_id = _by_id(early_td, today=date(2031, 3, 1))
    assert by_id["td-7y"].not_counted[0].reason == NotCountedReason.BEFORE_MINIMUM_AGE
    # Infant DTP-containing doses are not the reduced-dose booster.
    assert by_id["td-7y"].status == DoseStatus.DUE


def test_extra_unknown_and_premature_booster_doses():
    doses = [_dose("DTP-HEPB-HIB", _at(m), f"p{m}") for m in (2, 3, 4, 5)]
    doses += [_dose("BCG", BORN, "bcg-1"), _dose("BCG", _at(3), "bcg-again")]
    doses.append(_dose("NOT-A-VACCINE", _at(2), "unknown"))
    by_id = _by_id(doses, today=_at(7))
    assert [by_id[f"dtp-{n}"].status for n in (1, 2, 3)] == [DoseStatus.COMPLETED] * 3
    # A fourth dose at 5 months is no 18-month booster: explained, not counted.
    assert by_id["dtp-4"].status == DoseStatus.UPCOMING
    assert [(item.entry_id, item.reason) for item in by_id["dtp-4"].not_counted] == [
        ("p5", NotCountedReason.BEFORE_MINIMUM_AGE)
    ]
    # Doses beyond the last scheduled dose of a series are neither counted nor blamed.
    assert by_id["bcg"].completed_entry_ids == ("bcg-1",)
    assert by_id["bcg"].not_counted == ()


def test_pregnant_women_tetanus_schedule():
    schedule = load_schedule(PREGNANCY_SCHEDULE_ID)
    mother_born = date(1996, 4, 2)
    pregnancy = date(2024, 8, 1)
    previous = [_dose("TT", date(2021, 5, 1), "tt-1"), _dose("TD", date(2021, 6, 10), "td-2")]
    statuses = compute_schedule(
        date_of_birth=mother_born,
        doses=previous,
        today=date(2024, 9, 1),
        schedule=schedule,
        anchor_date=pregnancy,
    )
    by_id = {item.item_id: item for item in statuses}
    assert [item.item_id for item in statuses] == ["tt-1", "tt-2", "tt-3", "tt-4", "tt-5"]
    assert by_id["tt-2"].completed_entry_ids == ("td-2",)
    assert by_id["tt-3"].status == DoseStatus.DUE
    assert by_id["tt-4"].status == DoseStatus.UPCOMING
    assert by_id["tt-4"].due_date == date(2025, 9, 1)  # one year after giving dose 3 today

    first = compute_schedule(
        date_of_birth=mother_born,
        doses=[],
        today=pregnancy,
        schedule=schedule,
        anchor_date=pregnancy,
    )
    assert first[0].status == DoseStatus.DUE
    assert first[1].due_date == date(2024, 9, 1)
    with pytest.raises(ValueError, match="anchor_date"):
        compute_schedule(date_of_birth=mother_born, doses=[], today=pregnancy, schedule=schedule)


def test_schedule_data_cites_its_source_and_covers_the_programme():
    assert schedule_ids() == (DEFAULT_SCHEDULE_ID, PREGNANCY_SCHEDULE_ID)
    assert DEFAULT_SCHEDULE is load_schedule()
    assert "10/2024/TT-BYT" in DEFAULT_SCHEDULE.source
    assert "38/2017/TT-BYT" in DEFAULT_SCHEDULE.source
    assert DEFAULT_SCHEDULE.version == "2024-08-01"
    covered = set().union(*(row.antigens for row in DEFAULT_SCHEDULE.rows))
    programme = {
        "hepb",
        "bcg",
        "diphtheria",
        "pertussis",
        "tetanus",
        "polio",
        "hib",
        "measles",
        "rubella",
        "je",
        "rotavirus",
    }
    # HPV is a dated row for girls in the pilot provinces (2026-2028), not a row for everyone.
    assert covered == programme | {"hpv"}
    assert {row.id for row in DEFAULT_SCHEDULE.rows if "hpv" in row.antigens} == {"hpv-1"}
    assert covered <= set(antigens())
    for row in DEFAULT_SCHEDULE.rows + load_schedule(PREGNANCY_SCHEDULE_ID).rows:
        assert row.confidence in ("circular", "secondary", "service-decision") or (
            row.id == "hpv-1" and row.confidence == "reported-unverified"
        )
        assert row.note
        assert row.name_vi
        assert row.name_en
    with pytest.raises(KeyError):
        load_schedule("no-such-schedule")


def test_labels_and_messages_in_both_languages():
    for status in DoseStatus:
        assert DOSE_STATUS_LABELS[status]["vi"]
        assert DOSE_STATUS_LABELS[status]["en"]
    for reason in NotCountedReason:
        assert NOT_COUNTED_MESSAGES[reason]["vi"]
        assert NOT_COUNTED_MESSAGES[reason]["en"]
