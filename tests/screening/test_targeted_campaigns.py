"""Targeted re-screening (issue 20, seed 001's key times): a campaign for a special group, an exam-year grade, the
students with open signals, or an uploaded list — and everything that decides who a campaign is for follows it."""

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from cases.models import SignalSource, SignalStatus
from cases.signal_queue import signal_raise
from roster.access_codes import access_codes_issue
from roster.models import SpecialGroup, Student
from screening import campaigns
from screening.campaigns import (
    campaign_create,
    campaign_target_refresh,
    invited_students,
    students_with_nothing_to_answer,
    target_list_read,
)
from screening.models import Campaign, CampaignTarget, Instrument, RuleSet, ScreeningResult
from screening.reports import campaign_report
from screening.services import result_record
from screening.views_proctor import proctor_classes_for
from tests.factories.roster import SchoolClassFactory, StudentFactory
from tests.factories.screening import ANSWERS, shipped_definitions_loaded
from tests.screening.test_campaigns import ADD_URL, campaign_post


def _targeted(actor, schools, *, target, group=None, target_list=None, opens_in=datetime.timedelta(days=-1)):
    shipped_definitions_loaded()
    now = timezone.now()
    return campaign_create(
        actor=actor, name=f"复测-{target}", school_year="2026-2027", term="spring",
        instruments=list(Instrument.objects.filter(code__in=["PHQ9", "GAD7", "ASQ"]).order_by("pk")),
        ruleset=RuleSet.objects.get(code="adolescent-default"), target_grades=[], schools=schools,
        opens_at=now + opens_in, closes_at=now + datetime.timedelta(days=7), target=target,
        target_group=group, target_list=target_list,
    )  # fmt: skip


def _group(code):
    return SpecialGroup.objects.get(code=code)


def _ids(campaign):
    return set(invited_students(campaign).values_list("pk", flat=True))


def _open(campaign):
    Campaign.objects.filter(pk=campaign.pk).update(status="open")
    campaign.refresh_from_db()
    return campaign


def test_a_special_group_campaign_is_for_its_tagged_members_in_the_chosen_schools_only(world):
    left_behind = _group("left_behind")
    for student in (world.student_a1_3, world.student_a2, world.student_b1):
        student.special_groups.add(left_behind)
    campaign = _targeted(world.admin_district_a, [world.school_a1, world.school_a2], target="group", group=left_behind)
    assert campaign.target == CampaignTarget.GROUP and campaign.target_group == left_behind
    # District B's member is not in a district A campaign: a district admin targets within its schools.
    assert _ids(campaign) == {world.student_a1_3.pk, world.student_a2.pk}
    assert set(campaign.target_students.values_list("pk", flat=True)) == _ids(campaign)


def test_an_exam_year_group_is_the_students_of_its_grade(world):
    grade_9 = SchoolClassFactory(school=world.school_a1, grade=9, number=1)
    ninth = StudentFactory(school_class=grade_9)
    campaign = _targeted(world.admin_district_a, [world.school_a1], target="group", group=_group("grade_9"))
    assert _ids(campaign) == {ninth.pk}


def test_the_open_signals_target_takes_students_with_a_signal_waiting_for_triage(world):
    signal_raise(world.student_a2, source=SignalSource.CONCERN, tier="yellow", reason="情绪低落")
    signal_raise(world.student_a1_5, source=SignalSource.CONCERN, tier="yellow", reason="已处理",
                 status=SignalStatus.NO_ACTION)  # fmt: skip
    signal_raise(world.student_b1, source=SignalSource.CONCERN, tier="yellow", reason="另一区")
    campaign = _targeted(world.admin_district_a, [world.school_a1, world.school_a2], target="signals")
    assert _ids(campaign) == {world.student_a2.pk}


def test_an_uploaded_list_names_its_students(world):
    a1 = world.school_a1
    data = f"学校代码,学号\n{a1.code},{world.student_a1_3.student_no}\n{a1.code},{world.student_a1_5.student_no}\n"
    found = target_list_read(data.encode("gb18030"), "名单.csv", [a1, world.school_a2])
    assert not found.errors
    campaign = _targeted(world.admin_district_a, [a1, world.school_a2], target="list", target_list=found)
    assert _ids(campaign) == {world.student_a1_3.pk, world.student_a1_5.pk}


def test_the_list_reports_every_bad_row_and_the_admin_saves_nothing(client, world):
    a1, b1 = world.school_a1, world.school_b1
    rows = [
        "学校代码,学号",
        f"{a1.code},{world.student_a1_3.student_no}",
        f"{a1.code},NO-SUCH-1",  # line 3: no such student
        f"{b1.code},{world.student_b1.student_no}",  # line 4: a school outside the campaign (district B)
        f"{a1.code},学号?",  # line 5: not a student number
    ]
    upload = SimpleUploadedFile("list.csv", "\n".join(rows).encode("utf-8-sig"), content_type="text/csv")
    client.force_login(world.admin_district_a)
    response = client.post(ADD_URL, campaign_post(target="list", grades=[], target_file=upload))
    assert response.status_code == 200
    errors = " ".join(response.context["adminform"].form.errors["target_file"])
    assert "Nothing was saved" in errors or "没有保存" in errors or "未保存" in errors
    for line in ("3", "4", "5"):
        assert line in errors
    assert not Campaign.objects.exists()


def test_the_admin_offers_the_targets_with_the_key_times_as_help_and_creates_a_group_campaign(client, world):
    world.student_a1_3.special_groups.add(_group("single_parent"))
    client.force_login(world.admin_district_a)
    page = client.get(ADD_URL).content.decode()
    for words in ("春季入学", "考试季", "毕业季"):
        assert words in page
    response = client.post(ADD_URL, campaign_post(target="group", grades=[], target_group=_group("single_parent").pk))
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert _ids(Campaign.objects.get()) == {world.student_a1_3.pk}


def test_a_group_target_nobody_is_in_is_refused_in_the_form(client, world):
    client.force_login(world.admin_district_a)
    response = client.post(ADD_URL, campaign_post(target="group", grades=[], target_group=_group("orphan").pk))
    assert response.status_code == 200 and "target" in response.context["adminform"].form.errors
    assert not Campaign.objects.exists()


def test_the_portal_offers_a_targeted_campaign_to_its_students_only(client, world):
    world.student_a1_3.special_groups.add(_group("left_behind"))
    _open(_targeted(world.admin_district_a, [world.school_a1], target="group", group=_group("left_behind")))
    in_group, outside = access_codes_issue(
        actor=None, students=Student.objects.filter(pk__in=[world.student_a1_3.pk, world.student_a1_5.pk])
    )
    assert in_group.student == world.student_a1_3
    assert client.post(reverse("portal:start"), {"code": in_group.code}).status_code == 200
    refused = client.post(reverse("portal:start"), {"code": outside.code}).content.decode()
    assert "没有" in refused or "no screening" in refused.lower()


def test_access_codes_and_completion_follow_the_target(world):
    group = _group("left_behind")
    world.student_a1_3.special_groups.add(group)
    campaign = _open(_targeted(world.admin_district_a, [world.school_a1], target="group", group=group))
    result_record(campaign=campaign, student=world.student_a1_3, answers=ANSWERS["green"], source="portal")
    students = list(Student.objects.filter(school=world.school_a1).select_related("school_class"))
    assert students_with_nothing_to_answer(students) == {world.student_a1_3.pk}
    issued = access_codes_issue(actor=None, students=Student.objects.filter(school=world.school_a1))
    assert [code.student for code in issued] == [world.student_a1_5] and issued.answered == 1
    # The proctor page and the report count the targeted students, not the class.
    classes = {c.pk: (c.invited, c.done) for c in proctor_classes_for(world.counselor_a1, campaign)}
    assert classes == {world.class_a1_3.pk: (1, 1)}
    report = campaign_report(world.counselor_a1, campaign, {})
    assert (report.total.invited, report.total.completed) == (1, 1)


def test_a_result_for_a_student_outside_the_target_is_refused(world):
    from screening.services import NotInvited

    group = _group("left_behind")
    world.student_a1_3.special_groups.add(group)
    campaign = _open(_targeted(world.admin_district_a, [world.school_a1], target="group", group=group))
    with pytest.raises(NotInvited):
        result_record(campaign=campaign, student=world.student_a1_5, answers=ANSWERS["green"], source="import")
    assert not ScreeningResult.objects.exists()


def test_the_target_is_refreshed_until_the_campaign_opens(world):
    group = _group("left_behind")
    world.student_a1_3.special_groups.add(group)
    campaign = _targeted(world.admin_district_a, [world.school_a1], target="group", group=group,
                         opens_in=datetime.timedelta(days=3))  # fmt: skip
    world.student_a1_5.special_groups.add(group)
    assert _ids(campaign) == {world.student_a1_3.pk}  # resolved when saved, not on every read
    assert campaign_target_refresh(actor=world.admin_district_a, campaign=campaign) == 2
    assert _ids(campaign) == {world.student_a1_3.pk, world.student_a1_5.pk}
    assert campaign.history.first().history_change_reason == "target refreshed: 2 students"
    with pytest.raises(Exception):  # noqa: B017, PT011 (PermissionDenied: another district's admin)
        campaign_target_refresh(actor=world.admin_district_b, campaign=campaign)
    _open(campaign)
    with pytest.raises(ValidationError):
        campaign_target_refresh(actor=world.admin_district_a, campaign=campaign)


def test_without_cases_registered_nobody_has_an_open_signal(world, monkeypatch):
    monkeypatch.setattr(campaigns, "_open_signal_finder", None)
    signal_raise(world.student_a2, source=SignalSource.CONCERN, tier="yellow", reason="情绪低落")
    assert campaigns.open_signal_students({world.school_a2.pk}) == set()
