"""One triage queue (issue 20 item 1): a signal is triaged three ways by the school's psychology teachers, once; the
raiser is told it was seen and nothing clinical; red takes the crisis path at once; overdue signals climb the tier's
chain; the queue page is risk first with constant queries; access to the pages."""

import datetime
import re
import zoneinfo

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from viewflow.workflow.status import STATUS

from cases import concerns
from cases.models import AlertKind, Case, CrisisAlert, Reporter, Signal, SignalSource
from cases.signal_queue import signal_raise
from roster.models import Notification
from roster.roles import Role
from tests.factories.cases import active, page
from tests.factories.roster import StudentFactory, staff_with_role
from workflows import signals
from workflows.flows import CaseFlow
from workflows.services import main_processes

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
FRIDAY = datetime.datetime(2025, 11, 14, 10, 0, tzinfo=SHANGHAI)  # an ordinary Friday the calendar knows
MONDAY = datetime.datetime(2025, 11, 17, 10, 0, tzinfo=SHANGHAI)
QUEUE = "/care/signals/"


def concern(world, student=None, urgency="watch", by=None, **extra):
    detail = extra.pop("detail", "上课哭泣，说活着没意思")
    raiser, student = by or world.homeroom_a1_3, student or world.student_a1_3
    return concerns.concern_raise(raiser, student, what_was_seen=["mood"], urgency=urgency, detail=detail, **extra)


def seen_notes(user):
    return Notification.objects.filter(recipient=user, kind=signals.SEEN_KIND)


# --- Triage -----------------------------------------------------------------------------------------------------


def test_opening_a_case_from_a_concern_starts_its_process_and_tells_the_raiser_only_that_it_was_seen(world):
    signal = concern(world)
    case = signals.signal_open_case(world.counselor_a1, signal, tier="orange", note="面谈后确认：家庭变故")
    signal.refresh_from_db()
    assert (signal.status, signal.case, signal.decided_by) == ("case_opened", case, world.counselor_a1)
    assert (case.tier, case.source, case.opened_by) == ("orange", "teacher_referral", world.counselor_a1)
    (process,) = main_processes(case)
    assert active(process, CaseFlow.triage).status == STATUS.NEW  # the case's own triage waits in the queue
    assert signal.history.first().history_change_reason.startswith("triaged: case_opened: 面谈后确认")
    (note,) = seen_notes(world.homeroom_a1_3)
    text = note.title + note.body
    assert "王*明" in text and "王小明" not in text
    for clinical in ("橙", "orange", "家庭变故", "活着", "情绪低落", "开案", "个案"):
        assert clinical not in text, clinical
    assert note.link == reverse("care:my_concerns")


def test_adding_to_the_open_case_keeps_its_tier_and_writes_its_history(world, open_case):
    case, _process = open_case(world.student_a1_3, "orange")
    signal = concern(world)
    assert signals.signal_add_to_case(world.counselor_a1, signal, "已在跟进") == case
    signal.refresh_from_db()
    case.refresh_from_db()
    assert (signal.status, signal.case, case.tier) == ("added_to_case", case, "orange")
    assert case.history.first().history_change_reason == "signal added to the case: 已在跟进"
    assert seen_notes(world.homeroom_a1_3).count() == 1


def test_opening_a_case_for_a_student_with_one_adds_to_it_and_raises_its_tier(world, open_case):
    case, _process = open_case(world.student_a1_3, "yellow")
    signal = concern(world, urgency="soon")
    assert signals.signal_open_case(world.counselor_a1, signal, tier="orange", note="") == case
    case.refresh_from_db()
    signal.refresh_from_db()
    assert (case.tier, signal.status) == ("orange", "added_to_case")


def test_adding_needs_an_open_case(world):
    signal = concern(world)
    with pytest.raises(ValidationError):
        signals.signal_add_to_case(world.counselor_a1, signal, "")
    signal.refresh_from_db()
    assert signal.status == "open"


def test_no_action_needs_a_reason_and_is_recorded(world):
    signal = concern(world)
    with pytest.raises(ValidationError):
        signals.signal_no_action(world.counselor_a1, signal, "  ")
    signals.signal_no_action(world.counselor_a1, signal, "已了解：与同学闹别扭，已和好")
    signal.refresh_from_db()
    assert (signal.status, signal.decision_note, signal.case) == ("no_action", "已了解：与同学闹别扭，已和好", None)
    assert not Case.objects.exists() and seen_notes(world.homeroom_a1_3).count() == 1


def test_a_second_triage_is_refused_naming_who_and_when_and_changes_nothing(world):
    other = staff_with_role(Role.PSYCHOLOGY_TEACHER, world.school_a1, username="counselor_a1_b", name="李老师")
    signal = concern(world)
    stale = Signal.objects.get(pk=signal.pk)  # the second teacher's page, read before the first decided
    signals.signal_no_action(other, signal, "误会")
    with pytest.raises(signals.SignalAlreadyTriaged, match="李老师"):
        signals.signal_open_case(world.counselor_a1, stale, tier="red", note="")
    with pytest.raises(ValidationError, match="已由李老师"):
        signals.signal_add_to_case(world.counselor_a1, stale, "")
    signal.refresh_from_db()
    assert (signal.status, signal.decided_by) == ("no_action", other)
    assert not Case.objects.exists() and not CrisisAlert.objects.exists()


def test_only_the_schools_psychology_teachers_triage(world):
    signal = concern(world)
    for outsider in (world.homeroom_a1_3, world.principal_a1, world.counselor_a2, world.centre_district_a):
        with pytest.raises(PermissionDenied):
            signals.signal_no_action(outsider, signal, "x")
    signal.refresh_from_db()
    assert signal.status == "open"


# --- Red follows the crisis path -------------------------------------------------------------------------------


def test_a_red_concern_opens_a_red_case_at_once_and_raises_the_crisis_alert(world):
    teacher = staff_with_role(Role.SUBJECT_TEACHER, world.class_a1_3, username="maths_a1_3")
    signal = concern(world, urgency="danger", by=teacher)
    signal.refresh_from_db()
    case = Case.objects.get(student=world.student_a1_3)
    assert (case.tier, case.opened_by) == ("red", teacher)
    assert (signal.status, signal.case, signal.decided_by) == ("case_opened", case, None)
    alert = CrisisAlert.objects.get(student=world.student_a1_3)
    assert (alert.kind, alert.case) == (AlertKind.RED, case)
    assert main_processes(case).count() == 1
    assert seen_notes(teacher).count() == 1  # told it was received, nothing more


def test_a_red_signal_raised_by_the_system_takes_the_same_path(world):
    signal, created = signal_raise(world.student_a1_5, source=SignalSource.CHECKLIST, tier="red", reason="排查表",
                                   key="checklist:test")  # fmt: skip
    assert created and signal.status == "case_opened"
    case = Case.objects.get(student=world.student_a1_5)
    assert (case.tier, case.opened_by, signal.case) == ("red", None, case)
    assert CrisisAlert.objects.filter(case=case, kind=AlertKind.RED).exists()


def test_a_red_hotline_call_joins_and_raises_the_open_case(world, open_case):
    case, _process = open_case(world.student_a1_3, "yellow")
    signal = concerns.hotline_call_record(world.centre_district_a, world.student_a1_3, what_was_seen=["death_talk"],
                                          urgency="danger")  # fmt: skip
    case.refresh_from_db()
    assert (case.tier, signal.status, signal.case) == ("red", "added_to_case", case)


# --- Overdue signals never sit silently ------------------------------------------------------------------------


def test_an_overdue_signal_reminds_up_the_chain_each_level_once(world):
    with time_machine.travel(FRIDAY, tick=False):
        signal = concern(world, urgency="soon")  # orange: triaged within a school day
    assert signal.due_at == MONDAY

    def sweep(at):
        with time_machine.travel(at, tick=False):
            return signals.signals_overdue_sweep()

    def told():
        rows = Notification.objects.filter(kind=signals.OVERDUE_KIND)
        return sorted(rows.values_list("recipient__username", flat=True))

    assert sweep(FRIDAY + datetime.timedelta(hours=8)) == 0
    assert sweep(MONDAY + datetime.timedelta(minutes=1)) == 1 and told() == ["counselor_a1"]
    assert sweep(MONDAY + datetime.timedelta(minutes=5)) == 0
    assert sweep(MONDAY + datetime.timedelta(hours=4, minutes=1)) == 1
    assert told() == ["counselor_a1", "principal_a1"]
    assert sweep(MONDAY + datetime.timedelta(days=1, minutes=1)) == 1
    assert told() == ["centre_district_a", "counselor_a1", "principal_a1"]
    assert sweep(MONDAY + datetime.timedelta(days=9)) == 0
    signal.refresh_from_db()
    assert signal.escalation_level == 3
    note = Notification.objects.get(kind=signals.OVERDUE_KIND, recipient=world.principal_a1)
    assert "王*明" in note.title and note.link == reverse("care:signal_detail", args=[signal.pk])


def test_a_triaged_signal_reminds_nobody_and_the_tick_runs_the_sweep(world):
    from workflows.services import workflow_tick

    with time_machine.travel(FRIDAY, tick=False):
        done = concern(world, urgency="soon")
        waiting = concern(
            world,
            student=world.student_a1_5,
            urgency="soon",
            by=staff_with_role(Role.HOMEROOM_TEACHER, world.class_a1_5, username="homeroom_a1_5"),
        )
        signals.signal_no_action(world.counselor_a1, done, "已处理")
    with time_machine.travel(MONDAY + datetime.timedelta(days=3), tick=False):
        assert workflow_tick()["signals"] == 3
    keys = set(Notification.objects.filter(kind=signals.OVERDUE_KIND).values_list("subject_key", flat=True))
    assert keys == {f"signal:{waiting.pk}:overdue:{n}" for n in range(3)}


# --- The pages --------------------------------------------------------------------------------------------------


def _signals_at_a1(world, count: int):
    students = [StudentFactory(school_class=world.class_a1_3) for _ in range(count)]
    tiers = ["yellow", "red", "orange"]
    for n, student in enumerate(students):
        signal_raise(student, source=SignalSource.ABSENCE, tier=tiers[n % 3], reason="连续缺勤", key=f"t:{student.pk}")


def test_the_queue_is_risk_first_with_overdue_marked_and_constant_queries(client, world, django_assert_max_num_queries):
    with time_machine.travel(FRIDAY, tick=False):
        early = concern(world, urgency="watch")
    later = concern(world, student=world.student_a1_5, urgency="watch", by=world.counselor_a1)
    _signals_at_a1(world, 2)  # one yellow waits; the red one opened a case at once
    client.force_login(world.counselor_a1)
    response = client.get(QUEUE)
    assert response.status_code == 200
    tiers = [row["tier"] for row in response.context["rows"]]
    assert tiers == sorted(tiers, key=["red", "orange", "yellow", "green"].index)
    urls = [row["url"] for row in response.context["rows"]]
    assert urls.index(reverse("care:signal_detail", args=[early.pk])) < urls.index(
        reverse("care:signal_detail", args=[later.pk]))  # fmt: skip
    shown = page(response)
    assert "王*明" in shown and "王小明" not in shown and "已逾期" in shown
    client.get(QUEUE)
    with django_assert_max_num_queries(20) as small:
        client.get(QUEUE)
    _signals_at_a1(world, 45)
    with django_assert_max_num_queries(len(small.captured_queries)):
        big = client.get(QUEUE)
    assert len(big.context["rows"]) == 33  # the 2 concerns, 31 absences (the 16 red ones opened cases at once)
    decided = client.get(QUEUE, {"status": "case_opened", "source": "absence"})
    assert {row["status"] for row in decided.context["rows"]} == {"立案"}


def test_who_opens_the_queue_and_who_may_triage_on_its_page(client, world):
    signal = concern(world)
    detail = reverse("care:signal_detail", args=[signal.pk])
    subject = staff_with_role(Role.SUBJECT_TEACHER, world.class_a1_3, username="maths_a1_3")
    for user in (world.homeroom_a1_3, subject, world.school_admin_a1, world.counselor_a2):
        client.force_login(user)
        assert client.get(detail).status_code == 404, user
        if user == world.counselor_a2:  # another school's queue: this signal is not in it
            assert detail not in [row["url"] for row in client.get(QUEUE).context["rows"]]
        else:
            assert client.get(QUEUE).status_code == 404, user
    for reader in (world.principal_a1, world.centre_district_a, world.auditor_district_a):
        client.force_login(reader)
        shown = page(client.get(detail))
        assert "上课哭泣" in shown and 'id="triage"' not in shown  # read-only
        assert client.post(detail, {"action": "none", "none-reason": "x"}).status_code == 404
    client.force_login(world.homeroom_a1_3)
    assert client.get(QUEUE).status_code == 404
    client.force_login(world.counselor_a1)
    assert 'id="triage"' in page(client.get(detail))
    response = client.post(detail, {"action": "open", "open-tier": "yellow", "open-note": "面谈"})
    assert response.status_code == 302
    signal.refresh_from_db()
    assert signal.status == "case_opened"
    again = client.post(detail, {"action": "none", "none-reason": "x"}, follow=True)
    assert "已由" in page(again)
    signal.refresh_from_db()
    assert signal.status == "case_opened"


def test_a_subject_teacher_raises_a_concern_from_the_page_and_sees_when_it_was_seen(client, world):
    teacher = staff_with_role(Role.SUBJECT_TEACHER, world.class_a1_3, username="maths_a1_3")
    client.force_login(teacher)
    picker = client.get(reverse("care:concern_new"))
    assert f"?student={world.student_a1_3.pk}" in page(picker)
    assert f"?student={world.student_a1_5.pk}" not in page(picker)  # not their class
    assert client.get(reverse("care:concern_new"), {"student": world.student_a1_5.pk}).status_code == 404
    url = f"{reverse('care:concern_new')}?student={world.student_a1_3.pk}"
    form = client.get(url)
    assert "王小明" in page(form)
    response = client.post(url, {"seen": ["mood", "injury"], "detail": "", "reporter": "peer", "urgency": "watch"})
    assert response.status_code == 302 and response["Location"] == reverse("care:my_concerns")
    signal = Signal.objects.get()
    assert (signal.raised_by, signal.reporter, signal.tier) == (teacher, Reporter.PEER, "yellow")
    mine = page(client.get(reverse("care:my_concerns")))
    assert "尚未查看" in mine and "黄" not in mine
    signals.signal_no_action(world.counselor_a1, signal, "已了解")
    mine = page(client.get(reverse("care:my_concerns")))
    assert "已查看" in mine and "已了解" not in mine and "无需处理" not in mine


def test_the_hotline_page_finds_a_student_of_the_district_by_school_and_number(client, world):
    client.force_login(world.centre_district_a)
    hotline = reverse("care:hotline")
    assert "?student=" not in page(client.get(hotline))  # found by number or full name, never browsed
    found = client.get(hotline, {"school": world.school_a2.pk, "q": world.student_a2.student_no})
    assert f"?student={world.student_a2.pk}" in page(found)
    assert f"?student={world.student_b1.pk}" not in page(client.get(hotline, {"q": world.student_b1.student_no}))
    assert client.get(hotline, {"student": world.student_b1.pk}).status_code == 404
    response = client.post(f"{hotline}?student={world.student_a2.pk}", {"seen": ["home"], "urgency": "soon",
                                                                         "detail": "母亲来电"})  # fmt: skip
    assert response.status_code == 302
    assert Signal.objects.get().source == "hotline"
    client.force_login(world.counselor_a1)
    assert client.get(hotline).status_code == 404


def test_the_old_refer_action_leads_to_the_concern_page(client, world):
    client.force_login(world.homeroom_a1_3)
    inbox = page(client.get(CaseFlow.instance.reverse("inbox")))
    assert reverse("care:concern_new") in inbox and "上报关注" in inbox


def test_dashboards_count_signals_per_source_and_the_home_page_shows_the_queue(client, world, open_case):
    open_case(world.student_a1_5, "yellow")
    concern(world)
    client.force_login(world.principal_a1)
    board = page(client.get(reverse("reports:dashboard")))
    counts = re.search(r'id="signal-counts".*?</table>', board, re.S).group(0)
    assert "筛查预警" in counts and "教职工上报关注" in counts
    client.force_login(world.counselor_a1)
    home = page(client.get("/"))
    assert 'id="work-signals"' in home and QUEUE in home
    client.force_login(world.homeroom_a1_3)
    assert 'id="work-signals"' not in page(client.get("/"))


def test_the_demo_puts_concerns_and_a_hotline_call_in_the_showcase_schools_queue_once(demo_district):
    import io

    from workflows import demo_signals

    demo_signals.seed(io.StringIO())
    demo_signals.seed(io.StringIO())
    raised = Signal.objects.filter(source__in=["concern", "hotline"])
    assert sorted(raised.values_list("source", "reporter", "status")) == [
        ("concern", "parent", "open"), ("concern", "staff", "open"), ("hotline", "caller", "open"),
    ]  # fmt: skip
    assert raised.values("school").distinct().count() == 1
