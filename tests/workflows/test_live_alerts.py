"""Live crisis alerts on every staff page and one click to the work (issue 16, item 3): the banner's feed, the
alert's page with its "我来处理" button, and the work-first home page of the people who work crises."""

import datetime
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cases.alerts import ALERT_NOTICE_KIND, CARE_KIND
from cases.models import AlertKind, AlertStatus, CrisisAlert, CrisisAlertStep
from roster.masking import mask_name
from roster.models import AccessLogEntry, Notification
from roster.notifications import notify
from tests.factories.cases import active, task_url
from tests.factories.roster import StudentFactory
from tests.workflows.test_risk_first import clock, quiet_alerts
from workflows.flows import CaseFlow

LIVE = "/alerts/live/"


def raise_alert(case, *, kind=AlertKind.RED, minutes_ago=3, tell=()):
    alert = CrisisAlert.objects.create(
        student=case.student, school=case.school, case=case, kind=kind, event_key=f"test:{case.pk}:{kind}",
        raised_at=timezone.now() - datetime.timedelta(minutes=minutes_ago), in_school_hours=True, level=1,
    )  # fmt: skip
    if tell:
        CrisisAlertStep.objects.create(alert=alert, level=1, audiences="duty_psychology",
                                       recipients=[u.pk for u in tell], at=alert.raised_at)  # fmt: skip
        notify(tell, kind=ALERT_NOTICE_KIND, title="危机预警", link=f"/work/alerts/{alert.pk}/",
               subject_key=f"crisis_alert:{alert.pk}", urgent=True)  # fmt: skip
    return alert


@pytest.fixture
def red_case(world, open_case):
    case, process = open_case(world.student_a1_3, "red")
    quiet_alerts()
    return case, process


def live(client, user):
    client.force_login(user)
    response = client.get(LIVE, HTTP_X_BACKGROUND_POLL="1")
    assert response.status_code == 200
    return response


def test_the_live_feed_shows_a_new_alert_to_the_counselor_and_only_care_to_the_homeroom_teacher(client, world,
                                                                                                 red_case):  # fmt: skip
    case, _ = red_case
    assert json.loads(live(client, world.counselor_a1).content)["open"] == 0
    alert = raise_alert(case, tell=[world.counselor_a1])
    notify([world.homeroom_a1_3], kind=CARE_KIND, title="请留下该生，心理教师马上到",
           body=f"{world.class_a1_3}，{mask_name(case.student.name)}：请留下该生，心理教师马上到",
           link="/notifications/", subject_key="care:test", urgent=True)  # fmt: skip

    data = json.loads(live(client, world.counselor_a1).content)
    assert data["open"] == 1 and data["unread"] == 1 and data["unread_urgent"] == 1
    (row,) = data["alerts"]
    assert row["id"] == alert.pk and row["url"] == f"/work/alerts/{alert.pk}/"
    assert row["title"] == mask_name(case.student.name) and row["class"] == str(world.class_a1_3)
    assert case.student.name not in live(client, world.counselor_a1).content.decode()  # masked, never the name
    assert data["care"] == []

    response = live(client, world.homeroom_a1_3)
    data = json.loads(response.content)
    assert data["open"] == 0 and data["alerts"] == []
    assert [c["text"] for c in data["care"]] == [
        f"{world.class_a1_3}，{mask_name(case.student.name)}：请留下该生，心理教师马上到"
    ]
    body = response.content.decode()
    for result_bearing in ("red", "Red", "红", str(alert.get_kind_display()), "/work/alerts/"):
        assert result_bearing not in body
    for outsider in (world.counselor_a2, world.school_admin_a1):
        assert json.loads(live(client, outsider).content)["alerts"] == []


def test_what_the_banner_names_is_logged_when_it_changes_not_at_every_poll(client, world, red_case):
    """Issue 17, finding 7: reads never logged. The banner names students (masked) and classes: who was shown which
    alert or care instruction is in the access log, once per change of what is shown."""

    def entries():
        return list(
            AccessLogEntry.objects.filter(object_type__in=("cases.crisisalert", "roster.notification"))
            .order_by("pk").values_list("actor", "action", "object_type", "object_ids")
        )  # fmt: skip

    case, _ = red_case
    alert = raise_alert(case, tell=[world.counselor_a1])
    for _poll in range(3):
        live(client, world.counselor_a1)
    assert entries() == [("counselor_a1", "list", "cases.crisisalert", str(alert.pk))]
    second = raise_alert(case, kind=AlertKind.CRITICAL, tell=[world.counselor_a1])
    live(client, world.counselor_a1)
    assert entries()[-1] == (
        "counselor_a1",
        "list",
        "cases.crisisalert",
        ",".join(map(str, sorted([alert.pk, second.pk]))),
    )
    notify([world.homeroom_a1_3], kind=CARE_KIND, title="请留下该生，心理教师马上到", link="/notifications/",
           subject_key="care:test", urgent=True)  # fmt: skip
    live(client, world.homeroom_a1_3)
    live(client, world.homeroom_a1_3)
    assert [e for e in entries() if e[0] == "homeroom_a1_3"] == [
        ("homeroom_a1_3", "list", "roster.notification", str(Notification.objects.get(kind=CARE_KIND).pk))
    ]


def test_the_district_and_city_centres_see_the_schools_alerts_in_the_feed(client, world, red_case):
    alert = raise_alert(red_case[0])
    for person in (world.principal_a1, world.centre_district_a, world.city_centre):
        assert [a["id"] for a in json.loads(live(client, person).content)["alerts"]] == [alert.pk]


def test_a_signed_out_poll_is_refused_without_a_redirect(client):
    assert client.get(LIVE).status_code == 401


def test_the_live_feed_costs_the_same_queries_at_1_and_12_alerts(client, world, open_case):
    client.force_login(world.counselor_a1)

    def queries():
        with CaptureQueriesContext(connection) as captured:
            client.get(LIVE, HTTP_X_BACKGROUND_POLL="1")
        return len(captured)

    students = [StudentFactory(school_class=world.class_a1_3) for _ in range(12)]
    case, _ = open_case(students[0], "red")
    quiet_alerts()
    raise_alert(case, tell=[world.counselor_a1])
    client.get(LIVE)
    one = queries()
    for student in students[1:]:
        other, _ = open_case(student, "orange")
        raise_alert(other, kind=AlertKind.CRITICAL, tell=[world.counselor_a1])
    client.get(LIVE)  # what it shows changed: this poll logs it (a few queries more, once)
    assert queries() == one
    data = json.loads(client.get(LIVE).content)
    assert data["open"] >= 12 and len(data["alerts"]) == 5  # the newest five named, the count says the rest


def test_our_pages_and_the_task_pages_carry_the_live_banner(client, world):
    client.force_login(world.counselor_a1)
    for path in ("/", "/notifications/", "/work/case/inbox/", "/work/case/queue/"):
        body = client.get(path).content.decode()
        assert 'id="live-alerts"' in body and "js/alerts.js" in body, path
        assert 'data-live-url="/alerts/live/"' in body, path


def test_another_schools_counselor_finds_no_alert_page_and_the_refusal_is_logged(client, world, red_case):
    alert = raise_alert(red_case[0], tell=[world.counselor_a1])
    for outsider in (world.counselor_a2, world.homeroom_a1_3, world.school_admin_a1):
        client.force_login(outsider)
        assert client.get(f"/work/alerts/{alert.pk}/").status_code == 404
        assert client.post(f"/work/alerts/{alert.pk}/").status_code == 404
    assert client.get("/work/alerts/999999/").status_code == 404
    denied = AccessLogEntry.objects.filter(object_type="cases.crisisalert", outcome="denied")
    assert denied.filter(object_ids=str(alert.pk)).count() == 6
    assert CrisisAlert.objects.get(pk=alert.pk).status == AlertStatus.OPEN


def test_taking_an_alert_on_its_page_records_who_and_when_and_opens_the_triage(client, world, red_case):
    case, process = red_case
    alert = raise_alert(case, tell=[world.counselor_a1])
    client.force_login(world.counselor_a1)
    page = client.get(f"/work/alerts/{alert.pk}/").content.decode()
    assert mask_name(case.student.name) in page and case.student.name not in page
    assert 'id="take-alert"' in page and world.counselor_a1.get_short_name() in page  # the chain: who was told

    response = client.post(f"/work/alerts/{alert.pk}/")
    assert response.status_code == 302
    assert response["Location"] == task_url(active(process, CaseFlow.triage))
    alert.refresh_from_db()
    assert alert.status == AlertStatus.ACKNOWLEDGED and alert.acknowledged_by == world.counselor_a1
    assert alert.acknowledged_at is not None
    assert not Notification.objects.filter(recipient=world.counselor_a1, kind=ALERT_NOTICE_KIND,
                                           read_at__isnull=True).exists()  # fmt: skip
    assert json.loads(client.get(LIVE).content)["open"] == 0


def test_a_second_taker_is_told_who_took_it_and_nothing_changes(client, world, red_case):
    alert = raise_alert(red_case[0], tell=[world.counselor_a1])
    client.force_login(world.counselor_a1)
    client.post(f"/work/alerts/{alert.pk}/")
    taken_at = CrisisAlert.objects.get(pk=alert.pk).acknowledged_at

    client.force_login(world.principal_a1)
    response = client.post(f"/work/alerts/{alert.pk}/", follow=True)
    body = response.content.decode()
    taker = world.counselor_a1.name or world.counselor_a1.username
    assert taker in body and timezone.localtime(taken_at).strftime("%H:%M") in body
    assert 'id="take-alert"' not in body
    alert.refresh_from_db()
    assert alert.acknowledged_by == world.counselor_a1 and alert.acknowledged_at == taken_at


def test_opening_the_alert_notification_lands_on_the_alert_page(client, world, red_case):
    alert = raise_alert(red_case[0], tell=[world.counselor_a1])
    notice = Notification.objects.get(recipient=world.counselor_a1, kind=ALERT_NOTICE_KIND)
    client.force_login(world.counselor_a1)
    response = client.post(f"/notifications/{notice.pk}/read/")
    assert response["Location"] == f"/work/alerts/{alert.pk}/"
    assert client.get(response["Location"]).status_code == 200


def test_the_counselor_home_shows_the_open_alert_and_todays_tasks(client, world, red_case):
    case, process = red_case
    alert = raise_alert(case, tell=[world.counselor_a1])
    triage = active(process, CaseFlow.triage)
    now = timezone.localtime()
    end_of_day = now.replace(hour=23, minute=59, second=59)
    clock(triage, case, now + min(datetime.timedelta(minutes=30), (end_of_day - now) / 2))  # later today, even at 23:45
    client.force_login(world.counselor_a1)
    body = client.get("/").content.decode()
    assert 'id="work-alerts"' in body and f'action="/work/alerts/{alert.pk}/"' in body
    assert task_url(triage) in body  # due within the hour: in the queue's "due today"
    assert mask_name(case.student.name) in body and case.student.name not in body

    client.force_login(world.principal_a1)
    assert 'id="work-alerts"' in client.get("/").content.decode()
    client.force_login(world.homeroom_a1_3)  # not a crisis role: roster's home, no alert panel
    body = client.get("/").content.decode()
    assert 'id="work-alerts"' not in body and "/work/alerts/" not in body
