"""Red alerts: a red result tells the district centre at once (the school's people are reached by the crisis alert's
chain, tests/cases/test_crisis_alerts.py), in the app and by email, through the task queue; nobody else, nothing
twice, and never the answers or full name. Most tests widen the audience (SCREENING_ALERT_ROLES) to the school's
psychology teachers and principal, as a deployment may, so that the sending mechanics show on several people."""

import ast

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend
from django.urls import reverse
from django.utils import timezone
from django_q.models import Schedule, Task

from roster.models import Notification, User
from roster.notifications import NotificationEmailsFailed
from roster.roles import Role
from screening import alerts, tasks
from screening.models import ScreeningResult
from screening.results_import import ResultsImport, import_results
from screening.services import result_record
from tests.factories.roster import staff_with_role
from tests.factories.screening import CampaignFactory
from tests.roster_files import csv_bytes

CALM = {
    "PHQ9": dict.fromkeys(range(1, 10), "0"),
    "GAD7": dict.fromkeys(range(1, 8), "0"),
    "ASQ": {1: "no", 2: "no", 3: "no", 4: "no"},
}
RED_ASQ = {**CALM, "ASQ": {1: "yes", 2: "no", 3: "no", 4: "no", 5: "yes"}}  # acuity item: thoughts right now
RED_PHQ9 = {**CALM, "PHQ9": {**CALM["PHQ9"], 9: "2"}}  # self-harm thoughts on more than half the days
ORANGE = {**CALM, "ASQ": {1: "yes", 2: "no", 3: "no", 4: "no", 5: "no"}}
YELLOW = {**CALM, "PHQ9": {**dict.fromkeys(range(1, 6), "2"), **dict.fromkeys(range(6, 10), "0")}}  # total 10


@pytest.fixture
def campaign(world):
    return CampaignFactory(schools=[world.school_a1, world.school_a2])


@pytest.fixture(autouse=True)
def _site_url(settings):
    settings.SITE_URL = "http://testserver.example"


@pytest.fixture(autouse=True)
def _wide_audience(settings, request):
    if not request.node.name.startswith("test_by_default"):
        settings.SCREENING_ALERT_ROLES = {Role.PSYCHOLOGY_TEACHER, Role.PRINCIPAL, Role.DISTRICT_CENTRE}


def test_by_default_a_red_result_tells_the_district_centre_at_once_and_nobody_else(
    campaign, staff_emails, django_capture_on_commit_callbacks
):
    result = _record(campaign, staff_emails.student_a1_3, RED_PHQ9, django_capture_on_commit_callbacks)
    assert _alerted(result) == {"centre_district_a"}


@pytest.fixture
def staff_emails(world):
    """Every staff member has an address, so that who is emailed shows who was alerted."""
    for user in User.objects.all():
        user.email = f"{user.username}@example.edu.cn"
        user.save(update_fields=["email"])
    world.centre_district_b = staff_with_role(
        Role.DISTRICT_CENTRE, world.district_b, username="centre_district_b", email="centre_b@example.edu.cn"
    )
    return world


def _record(campaign, student, answers, capture):
    with capture(execute=True):
        return result_record(campaign=campaign, student=student, answers=answers, source="portal").result


def _alerted(result):
    return set(
        Notification.objects.filter(kind=alerts.ALERT_KIND, subject_key=f"screening_result:{result.pk}").values_list(
            "recipient__username", flat=True
        )
    )


@pytest.mark.parametrize("answers", [RED_ASQ, RED_PHQ9], ids=["asq-acuity", "phq9-item9"])
def test_a_red_result_alerts_the_schools_psychology_teachers_principal_and_district_centre(
    campaign, staff_emails, answers, django_capture_on_commit_callbacks
):
    world = staff_emails
    result = _record(campaign, world.student_a1_3, answers, django_capture_on_commit_callbacks)
    expected = {"counselor_a1", "principal_a1", "centre_district_a"}
    assert _alerted(result) == expected
    assert sorted(address for message in mail.outbox for address in message.to) == sorted(
        f"{name}@example.edu.cn" for name in expected
    )
    assert all(n.urgent and n.read_at is None for n in Notification.objects.all())
    # Through the task queue (django-q2 runs tasks inline in the test settings), not inside the request.
    assert [t.args for t in Task.objects.filter(func="screening.tasks.red_alert_send", success=True)] == [(result.pk,)]


def test_the_alert_reaches_nobody_outside_the_school_or_in_other_roles(
    campaign, staff_emails, django_capture_on_commit_callbacks
):
    world = staff_emails
    result = _record(campaign, world.student_a1_3, RED_ASQ, django_capture_on_commit_callbacks)
    not_told = {
        "homeroom_a1_3",  # the class teacher is on the proctor page, not on the alert list
        "counselor_a2",  # another school of the same district
        "school_admin_a1",
        "admin_district_a",
        "auditor_district_a",
        "centre_district_b",
        "city_centre",
        "city_admin",
        "root",
    }
    assert _alerted(result) & not_told == set()
    assert {a for m in mail.outbox for a in m.to} & {f"{n}@example.edu.cn" for n in not_told} == set()


def test_the_alert_follows_the_students_own_school(campaign, staff_emails, django_capture_on_commit_callbacks):
    world = staff_emails
    result = _record(campaign, world.student_a2, RED_ASQ, django_capture_on_commit_callbacks)
    assert _alerted(result) == {"counselor_a2", "centre_district_a"}  # school A2 has no principal in this world


def test_the_alert_links_proctors_to_the_class_page_and_the_district_centre_to_its_notifications(
    campaign, staff_emails, django_capture_on_commit_callbacks
):
    world = staff_emails
    result = _record(campaign, world.student_a1_3, RED_ASQ, django_capture_on_commit_callbacks)
    proctor = reverse("screening:proctor", kwargs={"campaign_id": campaign.pk, "class_id": world.class_a1_3.pk})
    # Only the alert itself: in school hours the class's homeroom teacher also gets a care instruction (cases.alerts).
    links = dict(Notification.objects.filter(kind=alerts.ALERT_KIND).values_list("recipient__username", "link"))
    assert links == {"counselor_a1": proctor, "principal_a1": proctor, "centre_district_a": ""}
    bodies = {m.to[0]: m.body for m in mail.outbox}
    assert f"http://testserver.example{proctor}" in bodies["counselor_a1@example.edu.cn"]
    assert "http://testserver.example/notifications/" in bodies["centre_district_a@example.edu.cn"]
    assert result.tier == "red"


def test_alerts_carry_the_masked_name_and_class_but_no_full_name_and_no_answers(
    campaign, staff_emails, django_capture_on_commit_callbacks
):
    world = staff_emails
    _record(campaign, world.student_a1_3, RED_ASQ, django_capture_on_commit_callbacks)
    assert mail.outbox
    forbidden = [
        "王小明",  # the full name
        world.student_a1_3.student_no,  # emails leave the system: no student number either
        "ASQ", "PHQ", "GAD",
        "自杀", "suicid", "killing yourself",  # item wording
        "yes", "declined",  # answer keys
    ]  # fmt: skip
    for message in mail.outbox:
        text = message.subject + message.body
        assert "王*明" in message.subject and "王*明" in message.body
        assert "7年级3班" in text and "Grade 7, class 3" in text  # Chinese first, then English
        assert text.index("7年级3班") < text.index("Grade 7, class 3")
        assert world.school_a1.name in message.subject
        assert [word for word in forbidden if word in text] == []
    for notification in Notification.objects.all():
        text = notification.title + notification.body
        assert "王*明" in text and "王小明" not in text and "ASQ" not in text


def test_running_the_alert_again_notifies_and_emails_nobody_twice(
    campaign, staff_emails, django_capture_on_commit_callbacks
):
    world = staff_emails
    result = _record(campaign, world.student_a1_3, RED_ASQ, django_capture_on_commit_callbacks)
    rows, emails = Notification.objects.filter(kind=alerts.ALERT_KIND).count(), len(mail.outbox)
    assert alerts.red_alert_send(result.pk) == 0
    assert (Notification.objects.filter(kind=alerts.ALERT_KIND).count(), len(mail.outbox)) == (rows, emails) == (3, 3)


def test_the_same_red_answers_again_alert_nobody_again(campaign, staff_emails, django_capture_on_commit_callbacks):
    world = staff_emails
    _record(campaign, world.student_a1_3, RED_ASQ, django_capture_on_commit_callbacks)
    _record(campaign, world.student_a1_3, RED_ASQ, django_capture_on_commit_callbacks)  # a replayed submission
    assert (Notification.objects.filter(kind=alerts.ALERT_KIND).count(), len(mail.outbox)) == (3, 3)


@pytest.mark.parametrize("answers", [CALM, YELLOW, ORANGE], ids=["green", "yellow", "orange"])
def test_results_below_red_alert_nobody(campaign, staff_emails, answers, django_capture_on_commit_callbacks):
    world = staff_emails
    result = _record(campaign, world.student_a1_3, answers, django_capture_on_commit_callbacks)
    assert result.tier != "red"
    assert (Notification.objects.filter(kind=alerts.ALERT_KIND).count(), len(mail.outbox)) == (0, 0)


def test_a_result_no_longer_red_when_the_task_runs_alerts_nobody(
    campaign, staff_emails, django_capture_on_commit_callbacks
):
    world = staff_emails
    with django_capture_on_commit_callbacks(execute=False):  # the worker has not picked the task up yet…
        red = result_record(campaign=campaign, student=world.student_a1_3, answers=RED_ASQ, source="import").result
        result_record(campaign=campaign, student=world.student_a1_3, answers=ORANGE, source="import")  # …re-scored
    assert ScreeningResult.objects.get(pk=red.pk).tier == "orange"
    assert alerts.red_alert_send(red.pk) == 0
    assert (Notification.objects.count(), len(mail.outbox)) == (0, 0)


def test_an_imported_red_result_alerts_too(campaign, staff_emails, django_capture_on_commit_callbacks):
    world = staff_emails
    header = (
        ["学校代码", "学号"]
        + [f"PHQ9_{n}" for n in range(1, 10)]
        + [f"GAD7_{n}" for n in range(1, 8)]
        + [f"ASQ_{n}" for n in range(1, 6)]
    )
    student = world.student_a1_5
    data = csv_bytes([header, [student.school.code, student.student_no] + [0] * 16 + ["是", "否", "否", "否", "是"]])
    with django_capture_on_commit_callbacks(execute=True):
        report = import_results(ResultsImport(campaign=campaign, data=data, filename="r.csv", dry_run=False))
    assert report.written
    result = ScreeningResult.objects.get(student=student)
    assert _alerted(result) == {"counselor_a1", "principal_a1", "centre_district_a"}


def test_inactive_staff_and_staff_without_an_address(campaign, staff_emails, django_capture_on_commit_callbacks):
    world = staff_emails
    User.objects.filter(pk=world.principal_a1.pk).update(is_active=False)
    User.objects.filter(pk=world.counselor_a1.pk).update(email="")
    result = _record(campaign, world.student_a1_3, RED_ASQ, django_capture_on_commit_callbacks)
    assert _alerted(result) == {"counselor_a1", "centre_district_a"}  # in the app even without an address
    assert [m.to for m in mail.outbox] == [["centre_district_a@example.edu.cn"]]


def test_a_deployment_may_add_the_city_centre(campaign, staff_emails, settings, django_capture_on_commit_callbacks):
    settings.SCREENING_ALERT_ROLES = [*alerts.DEFAULT_ALERT_ROLES, Role.CITY_CENTRE]
    result = _record(campaign, staff_emails.student_a1_3, RED_ASQ, django_capture_on_commit_callbacks)
    assert "city_centre" in _alerted(result)


class RefusingBackend(LocmemBackend):
    """A mail server that refuses one address, as a real one does now and then."""

    def send_messages(self, messages):
        if any("principal_a1@" in address for m in messages for address in m.to):
            raise OSError("550 mailbox unavailable")
        return super().send_messages(messages)


def test_a_failed_email_is_sent_by_the_scheduled_retry_and_the_others_only_once(
    campaign, staff_emails, settings, django_capture_on_commit_callbacks
):
    world = staff_emails
    with django_capture_on_commit_callbacks(execute=False):
        result = result_record(campaign=campaign, student=world.student_a1_3, answers=RED_ASQ, source="portal").result
    settings.EMAIL_BACKEND = f"{__name__}.RefusingBackend"
    with pytest.raises(NotificationEmailsFailed):
        alerts.red_alert_send(result.pk)
    assert len(_alerted(result)) == 3  # everybody is told in the app whatever the mail server does
    emailed = ["centre_district_a@example.edu.cn", "counselor_a1@example.edu.cn"]
    assert sorted(a for m in mail.outbox for a in m.to) == emailed
    retry = Schedule.objects.get(func="screening.tasks.red_alert_send")
    assert (retry.schedule_type, retry.next_run > timezone.now()) == (Schedule.ONCE, True)
    with pytest.raises(NotificationEmailsFailed):
        alerts.red_alert_send(result.pk)  # a second failure of the same attempt schedules nothing more
    assert Schedule.objects.filter(func="screening.tasks.red_alert_send").count() == 1

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    mail.outbox.clear()
    retry_args = ast.literal_eval(retry.args)
    assert retry_args == (result.pk, 2)
    tasks.red_alert_send(*retry_args)  # what the scheduler runs when the time comes
    assert [m.to for m in mail.outbox] == [["principal_a1@example.edu.cn"]]
    assert Notification.objects.count() == 3


def test_emails_failing_on_every_attempt_are_given_up_after_the_last(campaign, staff_emails, settings):
    result = result_record(
        campaign=campaign, student=staff_emails.student_a1_3, answers=RED_ASQ, source="portal"
    ).result
    settings.EMAIL_BACKEND = f"{__name__}.RefusingBackend"
    with pytest.raises(NotificationEmailsFailed):
        alerts.red_alert_send(result.pk, attempt=len(alerts.EMAIL_RETRY_MINUTES) + 1)
    assert not Schedule.objects.filter(func="screening.tasks.red_alert_send").exists()
