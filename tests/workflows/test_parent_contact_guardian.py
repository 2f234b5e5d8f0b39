"""Whoever records a parent contact must call the guardian: the step's page and the extra contact page show the
guardian's name and phone above the form, to those who see names on the case (cases.access.names_shown) and nobody
else (issue 18, item 8)."""

from django.urls import get_resolver

from cases import services as case_services
from roster.models import AccessLogEntry
from tests.factories.cases import active, take
from workflows import forms, services
from workflows.flows import CaseFlow

PHONE = "13812341234"  # tests.factories.roster.StudentFactory
CONTACT = 'id="guardian-contact"'


def seated_orange(world, open_case):
    case, process = open_case(world.student_a1_3, "orange")
    services.triage_done(world.counselor_a1, take(world.counselor_a1, process, CaseFlow.triage), tier="orange",
                         reason="确认")  # fmt: skip
    services.staffing_done(world.counselor_a1, take(world.counselor_a1, process, CaseFlow.staffing),
                           case_services.team_proposal(case))  # fmt: skip
    return case, process


def step_url(task, name="execute"):
    get_resolver().url_patterns  # noqa: B018  (the site names the flow's URLs when the URLconf loads)
    return task.flow_task.reverse(name, args=[task.process_id, task.pk])


def test_the_psychology_teacher_on_the_team_sees_whom_to_call_on_both_parent_contact_pages(client, world, open_case):
    case, process = seated_orange(world, open_case)
    contact = active(process, CaseFlow.parent_contact)
    services.task_release(world.homeroom_a1_3, contact)  # the homeroom teacher is away: the psychology teacher calls
    services.task_claim(world.counselor_a1, contact)
    client.force_login(world.counselor_a1)
    last = AccessLogEntry.objects.order_by("pk").last().pk
    step = client.get(step_url(contact))
    assert step.status_code == 200
    page = step.content.decode()
    assert CONTACT in page and "王大明" in page and f'href="tel:{PHONE}"' in page
    assert page.index(CONTACT) < page.index('name="guardian"')  # above the form
    # Only the page's existing reading of the case is logged; showing the guardian adds nothing.
    assert list(AccessLogEntry.objects.filter(pk__gt=last).values_list("action", "outcome")) == [("view", "ok")]

    extra = client.get(CaseFlow.instance.reverse("parent_contact_extra", args=[process.pk]))
    assert extra.status_code == 200
    assert CONTACT in extra.content.decode() and PHONE in extra.content.decode()


def test_a_district_centre_reader_of_the_case_is_never_shown_the_guardian(client, world, open_case):
    case, process = seated_orange(world, open_case)
    client.force_login(world.centre_district_a)
    case_page = client.get(CaseFlow.instance.reverse("process_detail", args=[process.pk]))
    assert case_page.status_code == 200 and "王小明" not in case_page.content.decode()  # reads it, names masked
    extra = client.get(CaseFlow.instance.reverse("parent_contact_extra", args=[process.pk]))
    assert extra.status_code == 404 and PHONE not in extra.content.decode()
    # The form itself carries nothing of the guardian's for someone who sees names masked.
    form = forms.ParentContactForm(case=case, user=world.centre_district_a)
    assert form.guardian_contact is None and not form.fields["guardian"].initial
    assert forms.ParentContactForm(case=case, user=world.homeroom_a1_3).guardian_contact == {
        "name": "王大明", "phone": PHONE,
    }  # fmt: skip
