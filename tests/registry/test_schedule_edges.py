"""The schedule at its edges (issue 15): upper ages, one dose for one row, catch-up limits,
rules valid on a date, and the programme's doses for adults."""

from dataclasses import replace
from datetime import date, timedelta

import pytest

from registry.reference.durations import Duration
from registry.reference.schedule import (
    ADULT_PROGRAMME_FILE,
    CONFIDENCE_LEVELS,
    DEFAULT_SCHEDULE_ID,
    NOT_COUNTED_MESSAGES,
    PREGNANCY_SCHEDULE_ID,
    DoseStatus,
    GivenDose,
    NotCountedReason,
    adult_programme,
    adult_recommendations,
    compute_schedule,
    legal_sources,
    load_schedule,
    not_counted_message,
    schedule_ids,
)

BORN = date(2024, 1, 15)
PILOT_PROVINCE = "066"  # Đắk Lắk, one of the four HPV pilot provinces (Decision 2780/QĐ-BYT)


def _at(months: int = 0, days: int = 0, born: date = BORN) -> date:
    return Duration(months=months).after(born) + timedelta(days=days)


def _dose(code: str, when: date, entry_id: str) -> GivenDose:
    return GivenDose(vaccine_code=code, occurrence_date=when, entry_id=entry_id)


def _by_id(doses, today, born=BORN, **kwargs):
    statuses = compute_schedule(date_of_birth=born, doses=doses, today=today, **kwargs)
    return {item.item_id: item for item in statuses}


# 1. A dose given after its maximum age does not count.


def test_rotavirus_after_the_product_age_limit_is_not_counted():
    late = _dose("ROTAVIN-M1", _at(6, 9), "rota-late")
    by_id = _by_id([late], today=_at(6, 10))
    rota_1 = by_id["rota-1"]
    assert rota_1.status == DoseStatus.MISSED
    assert rota_1.completed_entry_ids == ()
    assert [(n.entry_id, n.reason) for n in rota_1.not_counted] == [
        ("rota-late", NotCountedReason.PAST_MAXIMUM_AGE)
    ]
    assert rota_1.latest_date == date(2024, 7, 14)
    assert rota_1.limit_kind == "maximum-age"
    # The last day before six months still counts.
    by_id = _by_id([_dose("ROTAVIN-M1", date(2024, 7, 14), "rota-last-day")], today=_at(6, 10))
    assert by_id["rota-1"].completed_entry_ids == ("rota-last-day",)


def test_past_maximum_age_has_a_message_in_both_languages():
    for reason in (NotCountedReason.PAST_MAXIMUM_AGE, NotCountedReason.COUNTED_FOR_ANOTHER_DOSE):
        assert NOT_COUNTED_MESSAGES[reason]["vi"]
        assert NOT_COUNTED_MESSAGES[reason]["en"]
    assert "maximum age" in not_counted_message("past-maximum-age", "en")


# 2. One dose fills one row.


def test_hepatitis_b_at_two_months_fills_the_combination_not_the_birth_row():
    doses = [_dose("HEPB", _at(2), "hepb-2m"), _dose("DTAP-IPV-HIB", _at(2), "pentaxim")]
    by_id = _by_id(doses, today=_at(2, 3))
    birth = by_id["hepb-birth"]
    assert birth.status == DoseStatus.MISSED
    assert birth.completed_entry_ids == ()
    assert [(n.entry_id, n.reason) for n in birth.not_counted] == [
        ("hepb-2m", NotCountedReason.PAST_MAXIMUM_AGE)
    ]
    # The same-day combination still counts like a hexavalent dose.
    assert by_id["dtp-1"].status == DoseStatus.COMPLETED
    assert by_id["dtp-1"].completed_entry_ids == ("hepb-2m", "pentaxim")


def test_hepatitis_b_on_day_ten_is_no_birth_dose():
    by_id = _by_id([_dose("HEPB", BORN + timedelta(days=10), "hepb-d10")], today=_at(1))
    birth = by_id["hepb-birth"]
    assert birth.status == DoseStatus.MISSED
    assert birth.not_counted[0].reason == NotCountedReason.PAST_MAXIMUM_AGE
    # Within the first week it is a (late) birth dose.
    by_id = _by_id([_dose("HEPB", BORN + timedelta(days=6), "hepb-d6")], today=_at(1))
    assert by_id["hepb-birth"].completed_entry_ids == ("hepb-d6",)


def test_an_entry_counts_for_one_row_per_antigen():
    # Without the birth row's age limit (a schedule where both rows could take the dose), the
    # monovalent dose fills the first row that takes it and is not used again for hepatitis B.
    schedule = load_schedule()
    rows = tuple(
        replace(row, max_age=None) if row.id == "hepb-birth" else row for row in schedule.rows
    )
    unlimited = replace(schedule, rows=rows)
    doses = [_dose("HEPB", _at(2), "hepb-2m"), _dose("DTAP-IPV-HIB", _at(2), "pentaxim")]
    by_id = _by_id(doses, today=_at(2, 3), schedule=unlimited)
    assert by_id["hepb-birth"].completed_entry_ids == ("hepb-2m",)
    dtp_1 = by_id["dtp-1"]
    assert dtp_1.status == DoseStatus.DUE
    reasons = {(n.entry_id, n.reason) for n in dtp_1.not_counted}
    assert ("hepb-2m", NotCountedReason.COUNTED_FOR_ANOTHER_DOSE) in reasons
    assert dtp_1.not_counted[0].missing_antigens == ("hepb",)


def test_a_hexavalent_dose_fills_one_row_of_each_series_it_covers():
    by_id = _by_id([_dose("DTP-HEPB-HIB-IPV", _at(2), "hexa")], today=_at(2, 3))
    assert by_id["dtp-1"].completed_entry_ids == ("hexa",)
    assert by_id["ipv-1"].completed_entry_ids == ("hexa",)
    assert by_id["ipv-2"].completed_entry_ids == ()


def test_tdap_at_seven_is_the_td_booster_not_the_missing_infant_booster():
    doses = [_dose("DTP-HEPB-HIB", _at(m), f"p{m}") for m in (2, 3, 4)]
    doses.append(_dose("TDAP", _at(84), "tdap-7y"))
    by_id = _by_id(doses, today=_at(84, 5))
    assert by_id["td-7y"].completed_entry_ids == ("tdap-7y",)
    assert by_id["dtp-4"].completed_entry_ids == ()


# 3. Catch-up upper ages.


def test_an_unvaccinated_eight_year_old_has_missed_the_infant_doses():
    today = _at(96, 10)
    by_id = _by_id([], today)
    for item_id in ("dtp-1", "dtp-2", "dtp-3", "dtp-4", "opv-1", "ipv-1", "je-1", "bcg"):
        assert by_id[item_id].status == DoseStatus.MISSED, item_id
    dtp_1 = by_id["dtp-1"]
    assert dtp_1.latest_date == date(2031, 1, 14)  # the day before the seventh birthday
    assert dtp_1.limit_kind == "catch-up"
    assert dtp_1.limit_confidence in CONFIDENCE_LEVELS
    assert by_id["je-1"].latest_date == date(2030, 1, 14)  # through age 5
    # What is still given at eight: measles (no upper age) and the Td booster.
    assert by_id["measles-1"].status == DoseStatus.OVERDUE
    assert by_id["td-7y"].status == DoseStatus.OVERDUE  # due at 7, a year of grace
    assert by_id["measles-1"].limit_kind is None


def test_japanese_encephalitis_is_overdue_until_the_catch_up_limit():
    assert _by_id([], _at(71))["je-1"].status == DoseStatus.OVERDUE
    assert _by_id([], _at(72))["je-1"].status == DoseStatus.MISSED


def test_a_dose_given_after_the_catch_up_limit_still_counts():
    # The programme no longer offers it, but the child is protected: the limit is no validity rule.
    by_id = _by_id([_dose("IPV", _at(70), "ipv-late")], today=_at(71))
    assert by_id["ipv-1"].status == DoseStatus.COMPLETED
    assert by_id["ipv-1"].not_counted == ()


def test_every_limit_carries_its_source():
    for schedule_id in schedule_ids():
        schedule = load_schedule(schedule_id)
        for row in schedule.rows:
            assert row.catch_up_confidence in CONFIDENCE_LEVELS, row.id
            assert row.catch_up_note, row.id
            if row.max_age is not None:
                assert row.max_age_confidence in CONFIDENCE_LEVELS, row.id
            if row.catch_up_confidence == "service-decision":
                assert "chosen by this service" in row.catch_up_note, row.id


# 4. Validity periods.


def test_schedules_and_rules_have_validity_and_sources():
    sources = legal_sources()
    assert sources["tt-10-2024"].valid_from == date(2024, 8, 1)
    assert sources["tt-10-2024"].confidence == "circular"
    # Reported replacement and additions that no source confirmed are marked so.
    assert sources["tt-52-2025"].confidence == "reported-unverified"
    assert sources["tt-13-2026"].confidence == "reported-unverified"
    assert "not found" in sources["tt-13-2026"].note
    children = load_schedule()
    assert children.valid_from == date(2024, 8, 1)
    assert children.source_ref == "tt-10-2024"
    for schedule_id in schedule_ids():
        schedule = load_schedule(schedule_id)
        for row in schedule.rows:
            assert row.source_ref in sources, row.id
            # No start date: the rule predates the file's earliest circular (38/2017).
            if row.valid_from is not None and row.valid_until is not None:
                assert row.valid_until >= row.valid_from


def test_hpv_only_where_and_when_the_programme_has_it():
    girl_born = date(2015, 3, 1)
    eleven = date(2026, 3, 10)
    kwargs = {"born": girl_born, "sex": "female", "province_code": PILOT_PROVINCE}
    hpv = _by_id([], eleven, **kwargs)["hpv-1"]
    assert hpv.status == DoseStatus.DUE
    assert hpv.rule_confidence == "reported-unverified"
    # A 2025 date does not show a dose that only a 2026 decision adds.
    assert "hpv-1" not in _by_id([], date(2025, 12, 31), **kwargs)
    # Girls only, and only in the pilot provinces; unknown sex or province shows nothing.
    assert "hpv-1" not in _by_id([], eleven, born=girl_born, sex="male", province_code="066")
    assert "hpv-1" not in _by_id([], eleven, born=girl_born, sex="female", province_code="001")
    assert "hpv-1" not in _by_id([], eleven, born=girl_born)
    given = _by_id([_dose("HPV", date(2026, 3, 5), "hpv")], eleven, **kwargs)["hpv-1"]
    assert given.completed_entry_ids == ("hpv",)


def test_the_td_booster_exists_from_circular_10_2024_on():
    assert "td-7y" not in _by_id([], date(2024, 7, 31))
    assert "td-7y" in _by_id([], date(2024, 8, 1))


# 5. Adults.


def test_adult_recommendations_are_the_programme_doses_for_pregnant_women():
    mother_born = date(1996, 4, 2)
    pregnancy = date(2026, 1, 5)
    previous = [_dose("TT", date(2021, 5, 1), "tt-1")]
    statuses = adult_recommendations(
        date_of_birth=mother_born, sex="female", doses=previous, today=date(2026, 2, 1),
        pregnancy_start=pregnancy,
    )
    assert [item.item_id for item in statuses] == ["tt-1", "tt-2", "tt-3", "tt-4", "tt-5"]
    assert statuses[0].status == DoseStatus.COMPLETED
    assert statuses[1].status == DoseStatus.DUE
    assert statuses[1].due_date == pregnancy
    # Nothing is invented for men, or for women who are not pregnant.
    assert adult_recommendations(
        date_of_birth=mother_born, sex="male", doses=[], today=date(2026, 2, 1)
    ) == []
    assert adult_recommendations(
        date_of_birth=mother_born, sex="female", doses=previous, today=date(2026, 2, 1)
    ) == []


def test_the_adult_programme_is_data_with_sources():
    programme = adult_programme()
    assert ADULT_PROGRAMME_FILE.endswith(".json")
    assert [item.schedule_id for item in programme.recommendations] == [PREGNANCY_SCHEDULE_ID]
    for item in programme.recommendations:
        assert item.source_ref in legal_sources()
    # Vaccines outside the programme are listed as omitted, with why.
    assert programme.omitted
    assert all(item.reason for item in programme.omitted)


def test_schedule_ids_still_list_the_two_schedules():
    assert schedule_ids() == (DEFAULT_SCHEDULE_ID, PREGNANCY_SCHEDULE_ID)


@pytest.mark.parametrize("sex", ["female", "male", None])
def test_unchanged_infant_results_whatever_the_sex(sex):
    statuses = compute_schedule(date_of_birth=BORN, doses=[], today=_at(2), sex=sex)
    assert "dtp-1" in {item.item_id for item in statuses}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"source_ref": "no-such-circular"}, "unknown source"),
        ({"catch_up_confidence": "probably"}, "catch-up limit"),
        ({"catch_up_note": ""}, "catch-up limit"),
        ({"max_age": Duration(days=7), "max_age_confidence": None}, "max_age_confidence"),
        ({"valid_from": date(2026, 1, 1), "valid_until": date(2025, 1, 1)}, "valid_until"),
        ({"sex": "girls"}, "sex"),
        ({"confidence": "rumour"}, "confidence"),
    ],
)
def test_the_data_check_refuses_rows_without_sources_or_with_bad_periods(change, message):
    from registry.reference.schedule import _check_schedule

    schedule = load_schedule()
    rows = tuple(replace(row, **change) if row.id == "bcg" else row for row in schedule.rows)
    with pytest.raises(ValueError, match=message):
        _check_schedule(replace(schedule, rows=rows))


def test_a_dose_waiting_for_its_predecessor_is_never_due_soon():
    """JE dose 2 is projected a week after a JE dose 1 that was never given: that date moves
    every day, so it must not raise a "due soon" (a reminder every week with a new date)."""
    from datetime import date

    from registry.reference.schedule import compute_schedule

    born = date(2023, 1, 10)
    for today in (date(2024, 3, 1), date(2024, 3, 8), date(2024, 5, 2)):
        statuses = {s.item_id: s for s in compute_schedule(date_of_birth=born, doses=[],
                                                            today=today)}
        assert statuses["je-2"].status == "upcoming"
        assert not statuses["je-2"].due_soon
