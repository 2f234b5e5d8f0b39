"""Absences that become signals (cases.absence_rules, cases.care_rules): the rule edges, one signal per episode.

March 2026: Mon 2 … Fri 6, weekend 7-8, Mon 9 … Fri 13 (no public holiday that month)."""

from datetime import date

import pytest
import time_machine

from cases import care_rules
from cases.absence_rules import absence_signals_raise, clusters
from cases.models import Signal, SignalSource, SignalStatus
from roster.attendance import absences_announce
from roster.models import Absence, AbsenceKind, CalendarDay, CalendarDayKind

T, U, S, P = AbsenceKind.TRUANCY, AbsenceKind.UNEXPLAINED, AbsenceKind.SICK, AbsenceKind.PERSONAL


def d(day: int, month: int = 3) -> date:
    return date(2026, month, day)


def absent(student, *days, kind=T, month=3):
    for day in days:
        Absence.objects.update_or_create(
            student=student, date=d(day, month), defaults={"school_id": student.school_id, "kind": kind}
        )


def evaluate(student, since: date, on: date | None = None) -> int:
    with time_machine.travel(f"{(on or since).isoformat()} 18:00 +0800", tick=False):
        return absence_signals_raise([student.pk], on=on or since, since=since)


def signals(student):
    return list(Signal.objects.filter(student=student, source=SignalSource.ABSENCE).order_by("raised_at", "pk"))


@pytest.fixture
def pupil(world):
    return world.student_a1_3


def test_two_unexplained_days_raise_nothing_and_the_third_raises_one_yellow_signal(pupil):
    absent(pupil, 2, 3, kind=U)
    assert evaluate(pupil, d(3)) == 0
    assert signals(pupil) == []
    absent(pupil, 4)
    assert evaluate(pupil, d(4)) == 1
    (signal,) = signals(pupil)
    assert signal.reason == "连续3个上学日无故缺勤"
    assert signal.key == f"absence_run:{pupil.pk}:2026-03-02"
    assert (signal.tier, signal.status, signal.school_id) == ("yellow", SignalStatus.OPEN, pupil.school_id)
    assert "2026-03-02、2026-03-03、2026-03-04" in signal.detail
    assert signal.due_at is not None


def test_a_run_goes_on_across_the_weekend(pupil):
    absent(pupil, 5, 6, 9)  # Thu, Fri, Mon
    assert evaluate(pupil, d(9)) == 1
    assert signals(pupil)[0].key.endswith("2026-03-05")


def test_a_run_goes_on_across_a_public_holiday_of_the_district_calendar(world, pupil):
    absent(pupil, 9, 11, 12)  # Mon, (Tue), Wed, Thu
    assert evaluate(pupil, d(12)) == 0  # Tuesday was a school day the student was present: two runs
    CalendarDay.objects.create(district=world.district_a, date=d(10), kind=CalendarDayKind.HOLIDAY, name="校庆")
    assert evaluate(pupil, d(12)) == 1
    assert signals(pupil)[0].key.endswith("2026-03-09")


def test_a_school_day_present_breaks_the_run(pupil):
    absent(pupil, 2, 3, 5, 6)  # Wednesday present
    assert evaluate(pupil, d(2), on=d(6)) == 0


def test_excused_days_count_for_nothing_and_break_nothing(pupil):
    absent(pupil, 2, 3, 4, kind=S)
    absent(pupil, 5, 6, kind=P)
    assert evaluate(pupil, d(2), on=d(6)) == 0  # a week of sick and personal leave is no signal
    absent(pupil, 9, kind=T)
    absent(pupil, 10, kind=S)
    absent(pupil, 11, kind=U)
    assert evaluate(pupil, d(11)) == 0  # two counted days, the sick day between them neither breaks nor counts
    absent(pupil, 12, kind=T)
    assert evaluate(pupil, d(12)) == 1
    assert signals(pupil)[0].key.endswith("2026-03-09")


def test_one_signal_per_run_on_re_evaluation_and_on_the_next_days(pupil):
    absent(pupil, 2, 3, 4)
    assert evaluate(pupil, d(4)) == 1
    assert evaluate(pupil, d(4)) == 0  # the same list again
    absent(pupil, 5)
    assert evaluate(pupil, d(5)) == 0  # the run goes on: the same episode
    absent(pupil, 6, 9)
    assert evaluate(pupil, d(6), on=d(9)) == 0
    assert len(signals(pupil)) == 1


def test_a_new_run_after_a_day_present_is_a_new_episode(pupil):
    absent(pupil, 2, 3, 4)
    evaluate(pupil, d(4))
    absent(pupil, 10, 11, 12)  # present on Mon 9
    assert evaluate(pupil, d(12)) == 1
    assert [s.key.rsplit(":", 1)[1] for s in signals(pupil)] == ["2026-03-02", "2026-03-10"]


def test_an_earlier_day_added_later_joins_the_run_already_raised(pupil):
    absent(pupil, 4, 5, 6)
    assert evaluate(pupil, d(6)) == 1
    absent(pupil, 2, 3)  # Monday and Tuesday's list, imported late
    assert evaluate(pupil, d(2), on=d(6)) == 0
    assert len(signals(pupil)) == 1


def test_five_unexplained_days_within_thirty_days_raise_the_window_signal(pupil):
    absent(pupil, 2, 4, 6, 10, kind=U)  # never two days in a row
    assert evaluate(pupil, d(2), on=d(10)) == 0  # four
    absent(pupil, 16, kind=T)
    assert evaluate(pupil, d(16)) == 1
    (signal,) = signals(pupil)
    assert signal.reason == "30天内5天无故缺勤"
    assert signal.key == f"absence_window:{pupil.pk}:2026-03-16"


def test_five_days_spread_over_more_than_thirty_days_raise_nothing(pupil):
    absent(pupil, 2, 4, 6, 10)
    absent(pupil, 2, month=4)  # 31 days after March 2
    assert evaluate(pupil, d(2), on=d(2, 4)) == 0


def test_the_window_rule_raises_once_per_cluster_and_again_for_a_new_cluster(pupil):
    absent(pupil, 2, 4, 6, 10, 12)
    assert evaluate(pupil, d(2), on=d(12)) == 1
    absent(pupil, 17, 19)  # more of the same cluster
    assert evaluate(pupil, d(17), on=d(19)) == 0
    absent(pupil, 4, 6, 8, 12, 14, month=5)  # weeks later: a new cluster
    assert evaluate(pupil, d(4, 5), on=d(14, 5)) == 1
    assert [s.key.rsplit(":", 1)[1] for s in signals(pupil)] == ["2026-03-12", "2026-05-14"]


def test_a_run_is_not_raised_twice_by_the_window_rule(pupil):
    absent(pupil, 2, 3, 4, 5, 6)
    assert evaluate(pupil, d(2), on=d(6)) == 1
    assert [s.key.split(":")[0] for s in signals(pupil)] == ["absence_run"]


def test_clusters_are_chains_of_firing_days_less_than_a_window_apart():
    days = [d(1), d(2), d(3), d(4), d(5), d(20), d(30, 4)]
    assert [fired for fired, _w in clusters(days, 30, 5)] == [d(5)]
    assert [fired for fired, _w in clusters(days, 30, 2)] == [d(2)]  # Mar 20 continues it; Apr 30 is alone
    assert [fired for fired, _w in clusters([*days, d(1, 5)], 30, 2)] == [d(2), d(1, 5)]  # 45 days later: new


def test_the_rules_are_data(pupil):
    raw = care_rules.raw_rules()
    raw["absences"]["consecutive"]["school_days"] = 2
    raw["absences"]["window"]["enabled"] = False
    with care_rules.rules_override(raw):
        absent(pupil, 2, 3)
        assert evaluate(pupil, d(3)) == 1
        assert signals(pupil)[0].reason == "连续2个上学日无故缺勤"


def test_a_bad_rules_file_lists_every_problem():
    raw = care_rules.raw_rules()
    raw["absences"]["counted"] = ["truancy", "skipping"]
    raw["absences"]["consecutive"]["school_days"] = 0
    raw["absences"]["window"]["tier"] = "red"
    raw["absences"]["window"]["absences"] = 50
    with pytest.raises(care_rules.CareRulesInvalid) as refused:
        care_rules.parse_rules(raw)
    problems = "\n".join(refused.value.problems)
    assert len(refused.value.problems) == 4, problems
    assert "skipping" in problems and "school_days" in problems and "tier" in problems and "50" in problems


def test_the_announcement_runs_the_rules_and_counts_the_new_signals(pupil, world):
    other = world.student_a1_5
    absent(pupil, 2, 3, 4)
    absent(other, 2, 3)
    with time_machine.travel("2026-03-04 18:00 +0800", tick=False):
        raised = absences_announce(student_ids=[pupil.pk, other.pk], dates=[d(2), d(3), d(4)], actor=None)
    assert raised == 1
    assert len(signals(pupil)) == 1 and signals(other) == []


def test_many_episodes_are_raised_in_a_fixed_number_of_queries(world, django_assert_max_num_queries):
    """A city's list completes thousands of runs: their signals (and history rows) are written in bulk, not one by one
    (benchmarks/attendance_bench.py)."""
    from tests.factories.roster import StudentFactory

    def run_of_three(count):
        pupils = [StudentFactory(school=world.school_a1, school_class=world.class_a1_3) for _ in range(count)]
        for pupil in pupils:
            absent(pupil, 2, 3, 4)
        return [p.pk for p in pupils]

    few, many = run_of_three(2), run_of_three(30)
    with time_machine.travel("2026-03-04 18:00 +0800", tick=False):
        with django_assert_max_num_queries(12):
            assert absence_signals_raise(few, on=d(4), since=d(4)) == 2
        with django_assert_max_num_queries(12):
            assert absence_signals_raise(many, on=d(4), since=d(4)) == 30
    raised = Signal.objects.filter(source=SignalSource.ABSENCE)
    assert raised.count() == 32 and Signal.history.filter(source=SignalSource.ABSENCE).count() == 32
    assert all(s.due_at is not None and s.status == SignalStatus.OPEN for s in raised)
