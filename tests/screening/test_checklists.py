"""Teacher checklists (排查表, seed 003): an observer-rated instrument, filled by the class's homeroom teacher — one
short form per student — scored by the same engine, read as screening results are, never by the teacher who rated."""

import io

import pytest
import yaml
from django.core.management import call_command
from django.urls import reverse

from roster import scoping
from roster.access_codes import access_codes_issue
from roster.models import Student
from roster.roles import Role
from screening.campaigns import campaign_is_checklist, students_with_nothing_to_answer
from screening.definitions import INSTRUMENTS_DIR, DefinitionError, parse_instrument, shipped_instruments
from screening.models import Instrument, ResultSource, RuleSet, ScreeningResult
from screening.services import result_record
from screening.signals import student_flagged
from tests.factories.roster import StudentFactory, staff_with_role
from tests.factories.screening import ANSWERS, CampaignFactory, shipped_definitions_loaded

CALM = {f"TCHK-{n}": "0" for n in range(1, 10)}
SOME_SIGNS = {**CALM, "TCHK-2": "1", "TCHK-4": "2", "TCHK-5": "1"}  # total 4: yellow ("需要关注")
SELF_HARM_CLEAR = {**CALM, "TCHK-9": "2"}  # red
TIER_WORDS = [
    "红色",
    "橙色",
    "黄色",
    "绿色",
    "red",
    "orange",
    "yellow",
    "green",
    "得分",
    "分数",
    "需要关注",
    "明显异常",
]


@pytest.fixture
def checklist(world):
    shipped_definitions_loaded()
    return CampaignFactory(
        schools=[world.school_a1], with_instruments=["TCHK"], ruleset=RuleSet.objects.get(code="teacher-checklist")
    )


def form_url(campaign, school_class, student):
    return reverse("screening:checklist_form", args=[campaign.pk, school_class.pk, student.pk])


def class_url(campaign, school_class):
    return reverse("screening:checklist_class", args=[campaign.pk, school_class.pk])


def test_the_observer_checklist_is_parsed_and_loaded_and_a_wrong_rater_is_refused(db):
    tchk = shipped_instruments()["TCHK"]
    assert tchk.observer_rated and not shipped_instruments()["PHQ9"].observer_rated
    assert 8 <= len(tchk.items) <= 10 and [i.number for i in tchk.items if i.critical] == [9]
    assert "seed 003" in tchk.source and "Written for this project" in tchk.licence
    call_command("load_instruments", stdout=io.StringIO())
    assert Instrument.objects.get(code="TCHK").parsed().rater == "observer"
    assert RuleSet.objects.filter(code="teacher-checklist").exists()
    data = yaml.safe_load((INSTRUMENTS_DIR / "teacher_checklist.yaml").read_text(encoding="utf-8"))
    with pytest.raises(DefinitionError, match="rater"):
        parse_instrument({**data, "rater": "peer"})


def test_a_checklist_and_a_self_report_instrument_cannot_share_a_campaign(client, world):
    from tests.screening.test_campaigns import ADD_URL, campaign_post

    client.force_login(world.city_admin)
    mixed = client.post(ADD_URL, campaign_post(chosen_instruments=[i.pk for i in Instrument.objects.all()]))
    assert "chosen_instruments" in mixed.context["adminform"].form.errors or mixed.context["adminform"].form.errors
    alone = campaign_post(
        name="九月排查表", chosen_instruments=[Instrument.objects.get(code="TCHK").pk],
        ruleset=RuleSet.objects.get(code="teacher-checklist").pk,
    )  # fmt: skip
    created = client.post(ADD_URL, alone)
    assert created.status_code == 302, created.context["adminform"].form.errors
    wrong_rules = campaign_post(name="无规则", chosen_instruments=[Instrument.objects.get(code="TCHK").pk])
    assert client.post(ADD_URL, wrong_rules).status_code == 200  # adolescent-default has no rule for it


@pytest.mark.parametrize(
    "persona, class_name, expected",
    [
        ("homeroom_a1_3", "class_a1_3", 200),
        ("homeroom_a1_3", "class_a1_5", 404),  # not their class
        ("counselor_a1", "class_a1_3", 404),  # reads results; does not rate
        ("principal_a1", "class_a1_3", 404),
        ("school_admin_a1", "class_a1_3", 404),
        ("subject_teacher", "class_a1_3", 404),  # teaches the class, is not its homeroom teacher
        ("superuser", "class_a1_3", 404),
    ],
)
def test_only_the_homeroom_teacher_of_the_class_fills_it(client, world, checklist, persona, class_name, expected):
    world.subject_teacher = staff_with_role(Role.SUBJECT_TEACHER, world.class_a1_3, username="subject_a1_3")
    client.force_login(getattr(world, persona))
    school_class = getattr(world, class_name)
    student = Student.objects.filter(school_class=school_class).first()
    assert client.get(class_url(checklist, school_class)).status_code == expected
    assert client.get(form_url(checklist, school_class, student)).status_code == expected
    posted = client.post(form_url(checklist, school_class, student), SOME_SIGNS)
    assert posted.status_code == (302 if expected == 200 else 404)
    assert ScreeningResult.objects.exists() == (expected == 200)


def test_the_form_is_scored_by_the_engine_and_the_teacher_sees_only_that_it_is_in(client, world, checklist):
    client.force_login(world.homeroom_a1_3)
    student = world.student_a1_3
    page = client.get(form_url(checklist, world.class_a1_3, student)).content.decode()
    assert "自伤或轻生迹象" in page and student.name in page
    response = client.post(form_url(checklist, world.class_a1_3, student), SOME_SIGNS, follow=True)
    result = ScreeningResult.objects.get(campaign=checklist, student=student)
    assert (result.source, result.rated_by, result.tier) == (ResultSource.OBSERVER, world.homeroom_a1_3, "yellow")
    assert result.scores["TCHK"]["scales"]["total"] == 4 and result.fired_rules == ["tchk-total-some"]
    assert result.history.get().history_user == world.homeroom_a1_3
    shown = response.content.decode()
    assert "已提交" in shown
    assert not [word for word in TIER_WORDS if word in shown.lower()], "the rater reads a tier"
    # The form does not open again, and a second post changes nothing.
    again = client.get(form_url(checklist, world.class_a1_3, student), follow=True).content.decode()
    assert "已提交" in again and "TCHK-1" not in again
    client.post(form_url(checklist, world.class_a1_3, student), SELF_HARM_CLEAR)
    result.refresh_from_db()
    assert result.tier == "yellow" and ScreeningResult.objects.count() == 1


def test_an_unanswered_item_is_marked_and_nothing_is_saved(client, world, checklist):
    client.force_login(world.homeroom_a1_3)
    answers = {k: v for k, v in CALM.items() if k != "TCHK-9"}
    response = client.post(form_url(checklist, world.class_a1_3, world.student_a1_3), answers)
    assert response.status_code == 400 and "checklist-item missing" in response.content.decode()
    assert not ScreeningResult.objects.exists()


def test_the_class_page_lists_who_is_done_with_masked_names_in_constant_queries(
    client, world, checklist, django_assert_max_num_queries
):
    client.force_login(world.homeroom_a1_3)
    result_record(campaign=checklist, student=world.student_a1_3, answers={"TCHK": dict.fromkeys(range(1, 10), "0")},
                  source=ResultSource.OBSERVER, rated_by=world.homeroom_a1_3)  # fmt: skip
    client.get(class_url(checklist, world.class_a1_3))  # warm the session and the scope
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as one:
        page = client.get(class_url(checklist, world.class_a1_3)).content.decode()
    assert "王*明" in page and "王小明" not in page and "1 / 1" in page
    for _ in range(20):
        StudentFactory(school_class=world.class_a1_3)
    with django_assert_max_num_queries(len(one.captured_queries)):
        page = client.get(class_url(checklist, world.class_a1_3)).content.decode()
    assert "1 / 21" in page


def test_the_psychology_teacher_reads_the_result_and_the_homeroom_teacher_never_does(client, world, checklist):
    client.force_login(world.homeroom_a1_3)
    client.post(form_url(checklist, world.class_a1_3, world.student_a1_3), SOME_SIGNS)
    assert scoping.visible(world.counselor_a1, ScreeningResult).filter(campaign=checklist).count() == 1
    assert not scoping.visible(world.homeroom_a1_3, ScreeningResult).exists()
    assert client.get(reverse("screening:flagged", args=[checklist.pk])).status_code == 404
    client.force_login(world.counselor_a1)
    flagged = client.get(reverse("screening:flagged", args=[checklist.pk])).content.decode()
    assert "王*明" in flagged and "排查表总分 4-7" in flagged


def test_a_red_checklist_flags_the_student_like_any_result(
    client, world, checklist, django_capture_on_commit_callbacks
):
    from cases.models import CrisisAlert

    flagged = []

    def heard(sender, result, **kwargs):
        flagged.append(result)

    student_flagged.connect(heard, dispatch_uid="test_checklists.heard")
    try:
        client.force_login(world.homeroom_a1_3)
        with django_capture_on_commit_callbacks(execute=True):
            client.post(form_url(checklist, world.class_a1_3, world.student_a1_3), SELF_HARM_CLEAR)
    finally:
        student_flagged.disconnect(dispatch_uid="test_checklists.heard")
    (result,) = flagged
    assert (result.tier, result.source, result.rated_by) == ("red", ResultSource.OBSERVER, world.homeroom_a1_3)
    assert CrisisAlert.objects.filter(screening_result=result).exists()  # the critical item (self-harm signs)


def test_the_portal_never_offers_a_checklist_and_it_issues_no_codes(client, world, checklist):
    portal_campaign = CampaignFactory(schools=[world.school_a1])
    assert campaign_is_checklist(checklist) and not campaign_is_checklist(portal_campaign)
    result_record(campaign=portal_campaign, student=world.student_a1_3, answers=ANSWERS["green"], source="portal")
    students = list(Student.objects.filter(school=world.school_a1).select_related("school_class"))
    # Nothing left to answer in the portal: the checklist, unfilled, is not the student's to answer.
    assert students_with_nothing_to_answer(students) == {world.student_a1_3.pk}
    (code,) = access_codes_issue(actor=None, students=Student.objects.filter(pk=world.student_a1_5.pk))
    result_record(campaign=portal_campaign, student=world.student_a1_5, answers=ANSWERS["green"], source="portal")
    refused = client.post(reverse("portal:start"), {"code": code.code}).content.decode()
    assert "TCHK" not in refused and "排查" not in refused
    assert "已经" in refused or "already" in refused.lower()


def test_the_campaign_list_leads_the_homeroom_teacher_to_the_checklist(client, world, checklist):
    client.force_login(world.homeroom_a1_3)
    page = client.get(reverse("screening:campaigns")).content.decode()
    assert reverse("screening:checklist_classes", args=[checklist.pk]) in page
    assert reverse("screening:proctor_classes", args=[checklist.pk]) not in page
    assert client.get(reverse("screening:checklist_classes", args=[checklist.pk])).url == class_url(
        checklist, world.class_a1_3
    )
