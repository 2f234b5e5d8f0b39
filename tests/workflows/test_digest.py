"""The weekly digest (issue 7 item 6): principals get their school's overdue steps and new red cases, district centres
their district's, by email and in the app; masked names only; nobody with nothing to report is written to; a re-run
the same week sends nothing twice; the django-q2 schedule exists after migrate."""

import datetime
import zoneinfo

import pytest
from django.core import mail
from django_q.models import Schedule

from roster.models import Notification
from roster.roles import Role
from tests.factories.roster import StudentFactory, staff_with_role
from tests.workflows.test_dashboards import overdue, set_opened, staffed
from workflows import digests
from workflows.flows import CaseFlow


@pytest.fixture
def week(world, campaign, open_case):
    """School A1: c1 red, opened now, its interview overdue; c2 yellow opened now (not red: not in the digest); c3 red
    opened ten days ago (not new). School A2: c4 red opened now, nothing overdue. District B: nothing to report."""
    campaign.schools.add(world.school_a2)
    world.principal_a2 = staff_with_role(Role.PRINCIPAL, world.school_a2, username="principal_a2")
    world.principal_b1 = staff_with_role(Role.PRINCIPAL, world.school_b1, username="principal_b1")
    world.centre_district_b = staff_with_role(Role.DISTRICT_CENTRE, world.district_b, username="centre_district_b")
    told = (world.principal_a1, world.principal_a2, world.principal_b1, world.centre_district_a,
            world.centre_district_b, world.counselor_a1, world.city_centre, world.homeroom_a1_3)  # fmt: skip
    for n, user in enumerate(told):
        user.email = f"staff{n}@example.edu.cn"
        user.save(update_fields=["email"])
    c1, p1 = open_case(world.student_a1_3, "red")
    staffed(world, p1, "red", world.counselor_a1)
    overdue(p1, CaseFlow.interview)
    c2, _ = open_case(world.student_a1_5, "yellow")
    c3, _ = open_case(StudentFactory(school_class=world.class_a1_5, name="赵小刚"), "red")
    set_opened(c3, c3.opened_at - datetime.timedelta(days=10))
    c4, _ = open_case(world.student_a2, "red")
    return {"c1": c1, "c2": c2, "c3": c3, "c4": c4, "p1": p1}


def _sent_to(outbox):
    return {address for message in outbox for address in message.to}


def test_the_schedule_exists_after_migrate(db):
    schedule = Schedule.objects.get(func="workflows.digests.weekly_digest_send")
    assert schedule.schedule_type == Schedule.WEEKLY and schedule.repeats == -1
    local = schedule.next_run.astimezone(zoneinfo.ZoneInfo("Asia/Shanghai"))
    assert (local.weekday(), local.hour, local.minute) == (0, 7, 30)  # a Monday morning in Shanghai


def test_principals_and_district_centres_get_their_nodes_digest(world, week):
    mail.outbox.clear()
    digests.weekly_digest_send()
    assert _sent_to(mail.outbox) == {world.principal_a1.email, world.principal_a2.email, world.centre_district_a.email}
    by_address = {message.to[0]: message for message in mail.outbox}
    school_a1 = by_address[world.principal_a1.email].body
    assert f"#{week['c1'].pk}" in school_a1  # overdue and new red
    assert f"#{week['c4'].pk}" not in school_a1  # another school's
    assert f"#{week['c2'].pk}" not in school_a1 and f"#{week['c3'].pk}" not in school_a1  # not red; red but not new
    assert CaseFlow.instance.reverse("process_detail", args=[week["p1"].pk]) in school_a1
    district = by_address[world.centre_district_a.email].body
    assert f"#{week['c1'].pk}" in district and f"#{week['c4'].pk}" in district
    assert "/reports/dashboard/?district=" in district
    digest_a1 = next(d for d in digests.digests_for_week(week["c1"].opened_at + datetime.timedelta(minutes=1))
                     if d.level == "school" and d.node_id == world.school_a1.pk)  # fmt: skip
    assert [i.case_id for i in digest_a1.overdue] == [week["c1"].pk]
    assert [i.case_id for i in digest_a1.new_red] == [week["c1"].pk]


def test_the_email_names_students_masked_and_nothing_else_personal(world, week):
    mail.outbox.clear()
    digests.weekly_digest_send()
    for message in mail.outbox:
        text = message.subject + message.body
        assert world.student_a1_3.name not in text and world.student_a2.name not in text
        assert world.student_a1_3.student_no not in text and world.student_a1_3.guardian_phone not in text
        assert world.counselor_a1.name not in text  # no staff names either
    body = next(m.body for m in mail.outbox if m.to == [world.principal_a1.email])
    assert "王*明" in body


def test_nobody_with_nothing_to_report_is_written_to(world, week):
    mail.outbox.clear()
    digests.weekly_digest_send()
    quiet = (world.principal_b1, world.centre_district_b, world.counselor_a1, world.city_centre, world.homeroom_a1_3)
    assert not _sent_to(mail.outbox) & {user.email for user in quiet}
    assert not Notification.objects.filter(kind=digests.DIGEST_KIND, recipient__in=quiet).exists()


def test_a_second_run_the_same_week_sends_nothing_twice(world, week):
    mail.outbox.clear()
    assert digests.weekly_digest_send() == 3
    sent = len(mail.outbox)
    assert digests.weekly_digest_send() == 0
    assert len(mail.outbox) == sent == 3
    notice = Notification.objects.get(kind=digests.DIGEST_KIND, recipient=world.principal_a1)
    assert notice.link == f"/reports/dashboard/?school={world.school_a1.pk}" and notice.emailed_at is not None


def test_a_week_without_overdue_or_red_sends_nothing(world, campaign, open_case):
    open_case(world.student_a1_3, "yellow")
    mail.outbox.clear()
    assert digests.weekly_digest_send() == 0
    assert mail.outbox == []
