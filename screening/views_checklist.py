"""The homeroom teacher's checklist pages (排查表): their classes in a checklist campaign, a class's students with
which forms are in, and one short form per student. Thin: screening.checklists holds the rules.

No tier, score or reason ever reaches these pages: after submitting, the teacher reads "已提交" and nothing more.
Every read is logged (roster.audit): the students listed, the student whose form was opened.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache

from roster import audit
from roster.masking import mask_name
from roster.models import AccessAction, AccessOutcome, SchoolClass, Student
from screening import checklists
from screening.campaigns import accepts_answers
from screening.definitions import in_language
from screening.portal import answers_from_form
from screening.scoring import AnswerError
from screening.services import campaign_definitions


def _denied(model, object_id: int) -> None:
    audit.record(AccessAction.VIEW, object_type=audit.label(model), object_ids=[object_id],
                 outcome=AccessOutcome.DENIED)  # fmt: skip


def _items(definitions, data=None, missing=()) -> list[dict]:
    """The form's questions, in the campaign's order: texts in the UI language, the posted answer kept."""
    shown = []
    for code, instrument in definitions.instruments.items():
        for item in instrument.items:
            name = f"{code}-{item.number}"
            chosen = (data or {}).get(name)
            shown.append(
                {
                    "name": name,
                    "number": len(shown) + 1,
                    "text": in_language(item.text),
                    "missing": name in missing,
                    "options": [
                        {"key": o.key, "label": in_language(o.label), "checked": chosen == o.key} for o in item.options
                    ],
                }
            )
    return shown


@never_cache
@login_required
def checklist_classes(request, campaign_id: int):
    campaign = checklists.checklist_campaign(request.user, campaign_id)
    classes = list(checklists.checklist_classes_for(request.user, campaign))
    if len(classes) == 1:  # a homeroom teacher has one class: straight to it
        return redirect("screening:checklist_class", campaign_id=campaign.pk, class_id=classes[0].pk)
    audit.record(AccessAction.LIST, object_type=audit.label(SchoolClass), object_ids=[c.pk for c in classes])
    return render(
        request,
        "screening/checklist.html",
        {"campaign": campaign, "classes": classes, "school_class": None, "open": accepts_answers(campaign)},
    )


def _class_target(request, campaign_id: int, class_id: int):
    try:
        campaign = checklists.checklist_campaign(request.user, campaign_id)
        return campaign, checklists.checklist_class(request.user, campaign, class_id)
    except Http404:
        _denied(SchoolClass, class_id)
        raise


@never_cache
@login_required
def checklist_class(request, campaign_id: int, class_id: int):
    campaign, school_class = _class_target(request, campaign_id, class_id)
    rows = checklists.checklist_rows(campaign, school_class)
    audit.record(AccessAction.LIST, object_type=audit.label(Student), object_ids=[row.student_id for row in rows])
    return render(
        request,
        "screening/checklist.html",
        {
            "campaign": campaign,
            "school_class": school_class,
            "rows": rows,
            "done": sum(row.done for row in rows),
            "open": accepts_answers(campaign),
        },
    )


@never_cache
@login_required
def checklist_form(request, campaign_id: int, class_id: int, student_id: int):
    campaign, school_class = _class_target(request, campaign_id, class_id)
    try:
        student = checklists.checklist_student(campaign, school_class, student_id)
    except Http404:
        _denied(Student, student_id)
        raise
    back = redirect("screening:checklist_class", campaign_id=campaign.pk, class_id=school_class.pk)
    if checklists.checklist_done(campaign, student):
        messages.info(request, _("%(student)s: already submitted.") % {"student": mask_name(student.name)})
        return back
    if not accepts_answers(campaign):
        messages.error(request, _("This checklist is not open; nothing was saved."))
        return back
    definitions = campaign_definitions(campaign)
    missing: list[str] = []
    if request.method == "POST":
        answers, missing = answers_from_form(definitions, request.POST)
        if not missing:
            try:
                checklists.checklist_submit(actor=request.user, campaign=campaign, student=student, answers=answers)
            except checklists.ChecklistRefused as refusal:
                messages.error(request, str(refusal))
                return back
            except (AnswerError, PermissionDenied):
                _denied(Student, student.pk)
                raise Http404 from None
            messages.success(request, _("%(student)s: submitted.") % {"student": mask_name(student.name)})
            return back
    audit.record(AccessAction.VIEW, object_type=audit.label(Student), object_ids=[student.pk])
    instrument = next(iter(definitions.instruments.values()))
    return render(
        request,
        "screening/checklist_form.html",
        {
            "campaign": campaign,
            "school_class": school_class,
            "student": student,
            "instructions": in_language(instrument.instructions),
            "instrument_name": in_language(instrument.name),
            "items": _items(definitions, request.POST if request.method == "POST" else None, missing),
            "missing": bool(missing),
        },
        status=400 if missing else 200,
    )
