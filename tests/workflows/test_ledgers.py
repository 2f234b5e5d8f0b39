"""The ledgers (台账): key-help (open orange/red cases with team, plan, last contact), referrals and closed cases.
Rows checked against hand-made cases of tests/conftest.py's people; scoped (a principal their school, a district
centre its district, a homeroom teacher no ledger at all), masked, filtered, exported, logged, and a constant number
of queries a page whatever the number of rows."""

import datetime
import io

import openpyxl
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from cases import ledgers
from cases import services as case_services
from cases.models import Case, Closure, InterventionPlan, InterviewNote, ParentContact, Referral, TeamSeat
from roster.masking import mask_name
from roster.models import AccessLogEntry
from roster.roles import Role
from tests.factories.roster import StudentFactory, staff_with_role
from workflows import views_ledgers
from workflows.flows import CaseFlow

KEY_HELP, REFERRALS, CLOSED = "reports:ledger_key_help", "reports:ledger_referrals", "reports:ledger_closed"
LEDGERS = (KEY_HELP, REFERRALS, CLOSED)


def at(day: str, hour: int = 10) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime.fromisoformat(day).replace(hour=hour))


def staffed(world, case):
    """三包一 for an orange/red case of class 7-3: principal, counselor and homeroom teacher of A1."""
    case_services.team_set(world.counselor_a1, case, case_services.team_proposal(case))
    return case


def with_plan(world, case, written: str, review_on: str):
    plan = case_services.plan_record(
        world.counselor_a1, case, goals="安全计划（不应出现在台账）", needs_referral=True,
        review_on=datetime.date.fromisoformat(review_on), measures=[("每周谈话", world.counselor_a1)],
    )  # fmt: skip
    InterventionPlan.objects.filter(pk=plan.pk).update(created_at=at(written))
    return plan


def referred(world, case, *, requested: str, decided: bool = True, referred_on: str = "", feedback_on: str = ""):
    referral = case_services.referral_request(
        world.counselor_a1, case, institution="市精神卫生中心", reason="需要诊断（保密）", parental_consent="given"
    )
    Referral.objects.filter(pk=referral.pk).update(requested_at=at(requested))
    if decided:  # the principal sits on the 三包一 team: the district centre decides
        case_services.referral_decide(world.centre_district_a, referral, approve=True)
    if referred_on or feedback_on:
        case_services.referral_record_outcome(
            world.counselor_a1, referral, outcome="已预约",
            referred_on=datetime.date.fromisoformat(referred_on) if referred_on else None,
            feedback_received_on=datetime.date.fromisoformat(feedback_on) if feedback_on else None,
            feedback="门诊诊断（保密）" if feedback_on else "",
        )  # fmt: skip
    referral.refresh_from_db()
    return referral


@pytest.fixture
def cases(world, open_case, campaign):
    """A1: a red case (staffed, a plan, contacts, a referral made and answered) and an orange case opened 10 days
    ago with nobody met since. A2: a yellow case closed after 20 days (not on the key-help ledger). B1 (district B):
    an orange case. The dates are set by hand so that every column has one right answer."""
    campaign.schools.add(world.school_a2)
    red, red_process = open_case(world.student_a1_3, "red")
    staffed(world, red)
    with_plan(world, red, written="2026-03-05", review_on="2026-04-05")
    case_services.parent_contact_record(world.homeroom_a1_3, red, guardian="母亲", channel="phone", outcome="同意",
                                        consent="given", contacted_at=at("2026-03-02"))  # fmt: skip
    case_services.interview_record(world.counselor_a1, red, "有自伤想法（保密）", held_at=at("2026-03-09"),
                                   restricted=True)  # fmt: skip
    case_services.followup_record(world.counselor_a1, red, note="好转", outcome="continue")
    red.follow_ups.update(held_at=at("2026-03-07"))  # the interview (03-09) is the latest contact
    referral = referred(world, red, requested="2026-03-06", referred_on="2026-03-10", feedback_on="2026-03-20")

    orange, orange_process = open_case(world.student_a1_5, "orange")
    Case.objects.filter(pk=orange.pk).update(opened_at=timezone.now() - datetime.timedelta(days=10))

    closed, closed_process = open_case(world.student_a2, "yellow")
    closure = case_services.closure_propose(world.counselor_a2, closed, "情况稳定")
    case_services.closure_decide(world.centre_district_a, closure, approve=True, evaluation="同意")
    Case.objects.filter(pk=closed.pk).update(opened_at=at("2026-03-01"), closed_at=at("2026-03-21"))

    other, other_process = open_case(world.student_b1, "orange")
    return {
        "red": red,
        "red_process": red_process,
        "orange": orange,
        "orange_process": orange_process,
        "closed": closed,
        "closed_process": closed_process,
        "other": other,
        "referral": referral,
    }


def pks(rows):
    return [row.pk for row in rows]


def page(client, name, **params):
    response = client.get(reverse(name), params)
    assert response.status_code == 200
    return response


def shown(response) -> list[list[str]]:
    return [[str(cell.text) for cell in row] for row in response.context["rows"]]


# --- The key-help ledger ----------------------------------------------------------------------------------------


def test_key_help_lists_open_orange_and_red_cases_red_first_with_team_plan_and_last_contact(world, cases):
    rows = list(ledgers.key_help_ledger(world.counselor_a1))
    assert pks(rows) == [cases["red"].pk, cases["orange"].pk]  # not the closed yellow, not district B's
    red, orange = rows
    assert (red.leader, red.psychologist, red.homeroom) == (
        world.principal_a1.name,
        world.counselor_a1.name,
        world.homeroom_a1_3.name,
    )
    assert red.plan_written_at == at("2026-03-05") and red.plan_review_on == datetime.date(2026, 4, 5)
    assert red.last_contact_at == at("2026-03-09")  # the latest of contact 03-02, follow-up 03-07, interview 03-09
    assert (orange.leader, orange.plan_written_at, orange.last_contact_at) == (None, None, None)


def test_the_last_contact_is_the_latest_of_parent_contacts_follow_ups_and_interviews(world, cases):
    red = cases["red"]
    case_services.parent_contact_record(world.homeroom_a1_3, red, guardian="父亲", channel="home_visit",
                                        outcome="家访", consent="given", contacted_at=at("2026-03-12"))  # fmt: skip
    assert ledgers.key_help_ledger(world.counselor_a1).get(pk=red.pk).last_contact_at == at("2026-03-12")
    red.follow_ups.update(held_at=at("2026-03-15"))
    assert ledgers.key_help_ledger(world.counselor_a1).get(pk=red.pk).last_contact_at == at("2026-03-15")


def test_key_help_page_shows_masked_names_dates_and_links_and_never_a_note(client, world, cases):
    client.force_login(world.principal_a1)
    response = page(client, KEY_HELP)
    body = response.content.decode()
    red = cases["red"]
    assert shown(response)[0][:5] == [f"#{red.pk}", world.school_a1.name, str(world.class_a1_3),
                                      world.student_a1_3.student_no, "王*明"]  # fmt: skip
    first = shown(response)[0]
    assert first[8:] == [world.principal_a1.name, world.counselor_a1.name, world.homeroom_a1_3.name,
                         "2026-03-05", "2026-04-05", "2026-03-09"]  # fmt: skip
    case_page = CaseFlow.instance.reverse("process_detail", args=[cases["red_process"].pk])
    assert f'href="{case_page}"' in body
    for secret in ("王小明", "有自伤想法", "安全计划", "需要诊断", "门诊诊断"):
        assert secret not in body
    assert 'class="overdue"' in body  # the plan's review (2026-04-05) has passed; the orange case met nobody


def test_contact_overdue_filter_keeps_cases_nobody_met_within_their_tiers_interval(client, world, cases):
    client.force_login(world.counselor_a1)
    # Red: every 3 days, last met 03-09 (long past); orange: every 7 days, opened 10 days ago, never met.
    response = page(client, KEY_HELP, contact_overdue_only="on")
    assert [row[0] for row in shown(response)] == [f"#{cases['red'].pk}", f"#{cases['orange'].pk}"]
    case_services.parent_contact_record(world.counselor_a1, cases["orange"], guardian="母亲", channel="phone",
                                        outcome="已沟通", consent="given")  # fmt: skip
    response = page(client, KEY_HELP, contact_overdue_only="on")
    assert [row[0] for row in shown(response)] == [f"#{cases['red'].pk}"]


def test_key_help_tier_and_school_filters(client, world, cases):
    client.force_login(world.centre_district_a)
    assert [r[0] for r in shown(page(client, KEY_HELP, tier="orange"))] == [f"#{cases['orange'].pk}"]
    assert [r[0] for r in shown(page(client, KEY_HELP, school=world.school_a2.pk))] == []
    both = [f"#{cases['red'].pk}", f"#{cases['orange'].pk}"]
    assert [r[0] for r in shown(page(client, KEY_HELP, school=world.school_a1.pk))] == both


# --- Scope ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("persona", "expected"),
    [
        ("principal_a1", ["red", "orange"]),
        ("counselor_a1", ["red", "orange"]),
        ("counselor_a2", []),
        ("centre_district_a", ["red", "orange"]),
        ("auditor_district_a", ["red", "orange"]),
        ("city_centre", ["red", "orange", "other"]),
    ],
)
def test_each_person_sees_the_key_help_rows_of_their_scope(client, world, cases, persona, expected):
    client.force_login(getattr(world, persona))
    assert [r[0] for r in shown(page(client, KEY_HELP))] == [f"#{cases[name].pk}" for name in expected]


@pytest.mark.parametrize(
    ("persona", "closed_expected"), [("principal_a1", False), ("counselor_a2", True), ("centre_district_a", True)]
)
def test_closed_cases_of_another_school_are_not_listed(client, world, cases, persona, closed_expected):
    client.force_login(getattr(world, persona))
    assert ([f"#{cases['closed'].pk}"] if closed_expected else []) == [r[0] for r in shown(page(client, CLOSED))]


@pytest.mark.parametrize("persona", ["homeroom_a1_3", "school_admin_a1", "admin_district_a", "nobody"])
@pytest.mark.parametrize("name", [*LEDGERS, *(f"{n}_xlsx" for n in LEDGERS)])
def test_people_without_a_ledger_get_a_logged_404(client, world, cases, persona, name):
    """A homeroom teacher sits on cases but holds no ledger: its columns come from clinical records."""
    client.force_login(getattr(world, persona))
    assert client.get(reverse(name)).status_code == 404
    assert AccessLogEntry.objects.filter(actor=persona, outcome="denied", object_type="cases.case").exists()


def test_a_school_or_district_outside_the_scope_in_the_query_widens_nothing(client, world, cases):
    client.force_login(world.principal_a1)
    for params in ({"school": world.school_b1.pk}, {"district": world.district_b.pk}, {"school": world.school_a2.pk}):
        response = client.get(reverse(KEY_HELP), params)
        assert response.status_code == 200 and response.context["form"].errors
        assert response.context["page"] is None and response.context["rows"] == []
        assert client.get(reverse(f"{KEY_HELP}_xlsx"), params).status_code == 404
    # The choices offered are the user's own.
    form = page(client, KEY_HELP).context["form"]
    assert list(form.fields["school"].queryset) == [world.school_a1]


def test_a_city_centre_filters_by_district_and_a_school_must_lie_in_it(client, world, cases):
    client.force_login(world.city_centre)
    response = page(client, KEY_HELP, district=world.district_b.pk)
    assert [r[0] for r in shown(response)] == [f"#{cases['other'].pk}"]
    assert response.context["show_district"]
    mismatch = client.get(reverse(KEY_HELP), {"district": world.district_b.pk, "school": world.school_a1.pk})
    assert mismatch.context["form"].errors and mismatch.context["rows"] == []


# --- The referral ledger ----------------------------------------------------------------------------------------


def test_referral_ledger_row_has_institution_dates_decision_and_stage(client, world, cases):
    client.force_login(world.principal_a1)
    (row,) = shown(page(client, REFERRALS))
    referral = cases["referral"]
    assert row[0] == f"#{cases['red'].pk}" and row[4] == "王*明"
    assert row[6:] == [
        "市精神卫生中心", str(referral.get_parental_consent_display()), "2026-03-06", world.counselor_a1.name,
        str(referral.get_decision_display()), world.centre_district_a.name, timezone.localdate().isoformat(),
        "2026-03-10", "4", "2026-03-20", str(views_ledgers.STAGE_LABELS[ledgers.ReferralStage.FEEDBACK_RECEIVED]),
    ]  # fmt: skip
    rows = list(ledgers.referral_ledger(world.principal_a1))
    assert [r.stage for r in rows] == [ledgers.ReferralStage.FEEDBACK_RECEIVED]


def test_referral_stages_and_date_filter(client, world, cases):
    red = cases["red"]
    waiting = referred(world, red, requested="2026-04-01", decided=False)
    to_make = referred(world, red, requested="2026-04-02")
    made = referred(world, red, requested="2026-04-03", referred_on="2026-04-04")
    stages = {r.pk: r.stage for r in ledgers.referral_ledger(world.counselor_a1)}
    assert stages == {
        waiting.pk: ledgers.ReferralStage.PENDING, to_make.pk: ledgers.ReferralStage.TO_BE_MADE,
        made.pk: ledgers.ReferralStage.AWAITING_FEEDBACK, cases["referral"].pk: ledgers.ReferralStage.FEEDBACK_RECEIVED,
    }  # fmt: skip
    only = ledgers.referral_ledger(world.counselor_a1, stage=ledgers.ReferralStage.AWAITING_FEEDBACK)
    assert pks(only) == [made.pk]
    april = ledgers.referral_ledger(
        world.counselor_a1, since=datetime.date(2026, 4, 2), until=datetime.date(2026, 4, 3)
    )  # fmt: skip
    assert pks(april) == [made.pk, to_make.pk]  # newest request first, both ends of the range included
    client.force_login(world.counselor_a1)
    response = page(client, REFERRALS, stage="pending", since="2026-04-01")
    assert len(shown(response)) == 1
    assert client.get(reverse(REFERRALS), {"since": "2026-04-05", "until": "2026-04-01"}).context["form"].errors


# --- The closed-case ledger -------------------------------------------------------------------------------------


def test_closed_ledger_row_has_dates_duration_and_the_approver(client, world, cases):
    client.force_login(world.centre_district_a)
    (row,) = shown(page(client, CLOSED))
    closed = cases["closed"]
    assert row[0] == f"#{closed.pk}" and row[1] == world.school_a2.name
    assert row[4] == mask_name(world.student_a2.name) != world.student_a2.name
    assert row[6:] == ["2026-03-01", "2026-03-21", "20", world.counselor_a2.name, world.centre_district_a.name]
    assert Closure.objects.get(case=closed).decided_by == world.centre_district_a


def test_closed_ledger_filters_by_tier_and_closing_day(world, cases):
    user = world.centre_district_a
    assert pks(ledgers.closed_ledger(user, tier="yellow")) == [cases["closed"].pk]
    assert pks(ledgers.closed_ledger(user, tier="red")) == []
    assert pks(ledgers.closed_ledger(user, since=datetime.date(2026, 3, 21))) == [cases["closed"].pk]
    assert pks(ledgers.closed_ledger(user, until=datetime.date(2026, 3, 20))) == []


# --- Export -----------------------------------------------------------------------------------------------------


def workbook_rows(response) -> list[list]:
    content = b"".join(response.streaming_content)
    sheet = openpyxl.load_workbook(io.BytesIO(content)).active
    return [[cell.value for cell in row] for row in sheet.iter_rows()]


def test_the_export_holds_every_filtered_row_masked_and_is_logged_with_their_ids(client, world, cases):
    Referral.objects.filter(pk=cases["referral"].pk).update(institution='=HYPERLINK("http://x")')
    client.force_login(world.centre_district_a)
    response = client.get(reverse(f"{REFERRALS}_xlsx"))
    assert response.status_code == 200 and response["Content-Disposition"].startswith("attachment;")
    rows = workbook_rows(response)
    header, (row,) = rows[0], rows[1:]
    assert len(header) == len(row) == 17
    assert row[0] == f"#{cases['red'].pk}" and row[4] == "王*明"
    assert row[6] == '\'=HYPERLINK("http://x")'  # formula-safe
    assert row[14] == 4  # days to referral, a number
    entry = AccessLogEntry.objects.filter(actor="centre_district_a", action="export").get()
    assert entry.object_ids == str(cases["red"].pk) and entry.object_type == "cases.case"

    key_help = workbook_rows(client.get(reverse(f"{KEY_HELP}_xlsx"), {"tier": "orange"}))
    assert [r[0] for r in key_help[1:]] == [f"#{cases['orange'].pk}"]  # the filters apply to the export
    assert "王小明" not in str(key_help)


def test_the_export_is_not_capped_at_a_page(client, world, cases):
    for _ in range(55):
        student = StudentFactory(school_class=world.class_a1_5)
        case_services.case_refer(world.counselor_a1, student, "关注", tier="orange")
    client.force_login(world.counselor_a1)
    assert len(shown(page(client, KEY_HELP))) == 50
    assert page(client, KEY_HELP, page=2).context["page"].paginator.count == 57
    rows = workbook_rows(client.get(reverse(f"{KEY_HELP}_xlsx")))
    assert len(rows) == 1 + 57
    entry = AccessLogEntry.objects.filter(actor="counselor_a1", action="export").get()
    assert len(entry.object_ids.split(",")) == 57


def test_a_page_is_logged_as_a_list_of_the_cases_it_shows(client, world, cases):
    client.force_login(world.principal_a1)
    page(client, KEY_HELP)
    entry = AccessLogEntry.objects.filter(actor="principal_a1", action="list").latest("pk")
    assert entry.object_type == "cases.case"
    assert entry.object_ids == f"{cases['red'].pk},{cases['orange'].pk}"


# --- Query budget -----------------------------------------------------------------------------------------------


def _queries(client, url) -> tuple[int, int]:
    """(queries run, rows listed or exported)."""
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    rows = len(response.context["rows"]) if response.context else len(workbook_rows(response)) - 1
    return len(ctx.captured_queries), rows


def _grow(world, open_case, n: int):
    """n more A1 cases of every kind: staffed, planned, contacted, referred; a third closed."""
    homeroom = staff_with_role(Role.HOMEROOM_TEACHER, world.class_a1_5, username=f"homeroom_a1_5_{n}")
    for i in range(n):
        student = StudentFactory(school_class=world.class_a1_5)
        case, _ = open_case(student, "orange" if i % 2 else "red")
        case_services.team_set(world.counselor_a1, case, {
            TeamSeat.SCHOOL_LEADER: world.principal_a1, TeamSeat.PSYCHOLOGY_TEACHER: world.counselor_a1,
            TeamSeat.HOMEROOM_TEACHER: homeroom,
        })  # fmt: skip
        with_plan(world, case, written="2026-03-05", review_on="2026-04-05")
        case_services.parent_contact_record(homeroom, case, guardian="母亲", channel="phone", outcome="同意",
                                            consent="given")  # fmt: skip
        referred(world, case, requested="2026-03-06", referred_on="2026-03-08")
        if i % 3 == 0:
            closure = case_services.closure_propose(world.counselor_a1, case, "稳定")
            case_services.closure_decide(world.centre_district_a, closure, approve=True)  # orange/red: the centre
            if case.tier == "red":  # …and red, then the city crisis centre
                case_services.closure_decide(world.city_centre, closure, approve=True)


@pytest.mark.parametrize("name", [*LEDGERS, *(f"{n}_xlsx" for n in LEDGERS)])
def test_a_ledger_runs_the_same_number_of_queries_at_a_few_rows_and_at_many(client, world, cases, open_case, name):
    client.force_login(world.centre_district_a)
    url = reverse(name)
    small, few = _queries(client, url)
    _grow(world, open_case, 12)
    assert Case.objects.count() >= 16 and ParentContact.objects.count() >= 13 and InterviewNote.objects.exists()
    large, many = _queries(client, url)
    assert many >= few + 4  # the larger run lists more rows
    assert large == small
    # Session, user, scope, the filter's choices, count, page and the access-log entry (PostgreSQL's advisory lock
    # is one more query than SQLite).
    assert large <= 14 + (connection.vendor == "postgresql")
