"""Staff are shown by name, not by login (issue 18, item 6): the staff pickers of the case forms, the "printed by"
line of the print pages, and the 办理人 column of the auditor's case review (history rows, steps and access rows)."""

import pytest
from django.urls import reverse

from cases import services as case_services
from screening.services import result_record
from tests.factories.screening import ANSWERS, CampaignFactory
from workflows import forms, services
from workflows.flows import CaseFlow


@pytest.fixture
def triaged_case(world):
    """An orange case of 王小明 (A1 7-3) that the psychology teacher triaged and staffed, and then read."""
    campaign = CampaignFactory(schools=[world.school_a1])
    result = result_record(campaign=campaign, student=world.student_a1_3, answers=ANSWERS["orange"], source="import")
    case = case_services.case_open_for_flag(result.result).case
    process = services.case_process_start(case)
    triage = process.task_set.get(flow_task=CaseFlow.triage)
    services.task_claim(world.counselor_a1, triage)
    services.triage_done(world.counselor_a1, triage, tier="orange", reason="确认")
    staffing = process.task_set.get(flow_task=CaseFlow.staffing)
    services.task_claim(world.counselor_a1, staffing)
    services.staffing_done(world.counselor_a1, staffing, case_services.team_proposal(case))
    case.refresh_from_db()
    return case, process


def options(field) -> list[str]:
    return [str(label) for value, label in field.choices if value]


def test_the_hand_over_pickers_name_colleagues_without_their_login(world):
    form = forms.HandOverForm(school=world.school_a1)
    for name in ("leaver", "successor"):
        offered = options(form.fields[name])
        assert world.counselor_a1.name in offered and world.principal_a1.name in offered
        assert not [label for label in offered if "counselor_a1" in label or "（" in label]


def test_the_team_and_plan_pickers_name_colleagues_without_their_login(world, triaged_case):
    case, _ = triaged_case
    staffing = forms.StaffingForm(case=case, user=world.counselor_a1)
    seats = [label for field in staffing.fields.values() for label in options(field)]
    assert world.counselor_a1.name in seats and world.homeroom_a1_3.name in seats
    plan = forms.PlanForm(case=case, user=world.counselor_a1)
    responsible = options(plan.fields["responsible_1"])
    assert world.counselor_a1.name in responsible
    assert not [label for label in seats + responsible if "_a1" in label]


def test_a_colleague_without_a_name_is_offered_by_login(world):
    world.principal_a1.name = ""
    world.principal_a1.save(update_fields=["name"])
    assert "principal_a1" in options(forms.HandOverForm(school=world.school_a1).fields["successor"])


def test_the_printed_report_says_who_printed_it_by_name(client, world):
    campaign = CampaignFactory(schools=[world.school_a1])
    client.force_login(world.counselor_a1)
    response = client.get(reverse("screening:report_print", args=[campaign.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert f"由 {world.counselor_a1.name} 于" in html
    assert "counselor_a1" not in html


def test_the_review_names_people_in_history_steps_and_access_rows(client, world, triaged_case):
    _, process = triaged_case
    client.force_login(world.counselor_a1)
    assert client.get(CaseFlow.instance.reverse("process_detail", args=[process.pk])).status_code == 200
    client.force_login(world.auditor_district_a)
    review = CaseFlow.instance.reverse("case_review", args=[process.pk])
    entries = client.get(review).context["entries"]
    named = {kind: {e.who for e in entries if e.kind == kind} for kind in ("change", "step", "access")}
    assert world.counselor_a1.name in named["change"]
    assert world.counselor_a1.name in named["step"]
    assert {world.counselor_a1.name, world.auditor_district_a.name} <= named["access"]
    logins = {"counselor_a1", "auditor_district_a", "principal_a1", "homeroom_a1_3"}
    assert not [e for e in entries if e.who in logins]
    html = client.get(review).content.decode()
    assert f"<td>{world.counselor_a1.name}</td>" in html and "<td>counselor_a1</td>" not in html
    # The person filter still takes the login (what the access log keeps), and now the name too.
    for person in ("counselor_a1", world.counselor_a1.name):
        only = client.get(review, {"person": person}).context["entries"]
        assert only and {e.who for e in only} == {world.counselor_a1.name}
