"""The signal pages under /care/ (app "care", workflows/urls_signals.py): raise a concern (关注上报, phone first),
my concerns (seen or not yet), the school's triage queue and a signal's page with the three triage actions, and the
district centre's hotline call.

Thin views: who may do what is cases.care_access's and the services' (cases.concerns, workflows.signals); which rows
a person reads is roster.scoping's. Forbidden and missing both answer 404; every reading of signals is logged.
May import: roster, screening, cases.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from cases import care_access, concerns
from cases.models import ACTIVE_STATUSES, Case, Signal, SignalStatus
from roster import audit, scoping
from roster.masking import mask_name
from roster.models import AccessAction, AccessOutcome, School, Student
from roster.params import int_param
from workflows import models as workflow_models
from workflows import signals
from workflows.flows import CaseFlow
from workflows.forms_signals import AddToCaseForm, ConcernForm, HotlineForm, NoActionForm, OpenCaseForm, QueueFilterForm

PAGE_SIZE = 50
PICK_SHOWN = 60  # students listed by the picker; a search narrows the rest


def _refused(object_type: str = "", pk=None):
    audit.record(AccessAction.VIEW, object_type=object_type or audit.label(Signal), object_ids=[pk] if pk else [],
                 outcome=AccessOutcome.DENIED)  # fmt: skip
    return Http404()


def _student_label(user, student: Student, *, school: bool = False) -> str:
    shown = scoping.identities_visible(user, Student.objects.filter(pk=student.pk)).exists()
    name = student.name if shown else mask_name(student.name)
    parts = [name, str(student.school_class)] + ([student.school.name] if school else [])
    return " · ".join(parts)


def _pick(request, students, *, masked: bool) -> list[dict]:
    """The picker's students: a search by name or 学号 (and the hotline's school), at most PICK_SHOWN."""
    q = (request.GET.get("q") or "").strip()
    if masked and not q:  # the district centre finds a student by number or full name, never browses a district
        return []
    if q:
        students = students.filter(Q(name=q) | Q(student_no=q) | (Q(name__contains=q) if not masked else Q(pk__in=[])))
    school = int_param(request.GET, "school")
    if school is not None:
        students = students.filter(school_id=school)
    rows = students.select_related("school_class", "school").order_by(
        "school__code", "school_class__grade", "school_class__number", "student_no"
    )[:PICK_SHOWN]
    return [
        {"pk": s.pk, "name": mask_name(s.name) if masked else s.name, "class": str(s.school_class),
         "school": s.school.name, "student_no": s.student_no}
        for s in rows
    ]  # fmt: skip


def _raise_page(request, *, hotline: bool):
    """The concern page and the hotline page: pick the student, then two taps."""
    user = request.user
    students = care_access.hotline_students(user) if hotline else care_access.concern_students(user)
    student_pk = int_param(request.GET, "student")
    context = {"hotline": hotline, "now": timezone.now()}
    if student_pk is None:
        if request.GET.get("student"):
            raise _refused(audit.label(Student), request.GET.get("student"))
        context.update(
            picking=True, q=request.GET.get("q", ""), students=_pick(request, students, masked=hotline),
            schools=scoping.visible(user, School).filter(
                district_id__in=students.values("school__district_id")
            ).order_by("code") if hotline else [],
            school_pk=int_param(request.GET, "school"),
        )  # fmt: skip
        return TemplateResponse(request, "workflows/signals/raise.html", context)
    student = students.select_related("school_class", "school").filter(pk=student_pk).first()
    if student is None:
        raise _refused(audit.label(Student), student_pk)
    form = (HotlineForm if hotline else ConcernForm)(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            if hotline:
                concerns.hotline_call_record(
                    user, student, what_was_seen=data["seen"], urgency=data["urgency"], detail=data["detail"]
                )
            else:
                concerns.concern_raise(
                    user, student, what_was_seen=data["seen"], urgency=data["urgency"], reporter=data["reporter"],
                    detail=data["detail"],
                )  # fmt: skip
        except (ValidationError, PermissionDenied) as error:
            form.add_error(None, error.messages if isinstance(error, ValidationError) else str(error))
        else:
            if hotline:
                messages.success(request, _("The call is recorded and routed to %(school)s's queue.")
                                 % {"school": student.school.name})  # fmt: skip
                return HttpResponseRedirect(reverse("care:signals"))
            messages.success(request, _("Thank you. The school's psychology teachers will see it; you will be told "
                                        "when they have."))  # fmt: skip
            return HttpResponseRedirect(reverse("care:my_concerns"))
    context.update(
        form=form, student=student, student_label=_student_label(user, student, school=hotline),
        change_url=reverse("care:hotline" if hotline else "care:concern_new"),
    )  # fmt: skip
    return TemplateResponse(request, "workflows/signals/raise.html", context)


@login_required
def concern_new(request):
    """关注上报: pick a student you teach (or ?student=<pk>), say what you saw and how urgent."""
    if not (scoping.scope_for(request.user).roles & care_access.CONCERN_ROLES):
        raise _refused()
    return _raise_page(request, hotline=False)


@login_required
def hotline(request):
    """The district centre records a hotline call about a student of its district (found by school and 学号, or by
    name within the district)."""
    from roster.roles import Role

    if Role.DISTRICT_CENTRE not in scoping.scope_for(request.user).roles:
        raise _refused()
    return _raise_page(request, hotline=True)


@login_required
@require_GET
def my_concerns(request):
    """The concerns I raised: whether each was seen, nothing else (no tier, no decision, no note)."""
    page = Paginator(signals.my_concerns(request.user), PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [
        {"student": f"{mask_name(s.student.name)} · {s.student.school_class}", "raised_at": s.raised_at,
         "what": s.reason, "seen": s.status != SignalStatus.OPEN, "source": s.get_source_display()}
        for s in page
    ]  # fmt: skip
    may_raise = bool(scoping.scope_for(request.user).roles & care_access.CONCERN_ROLES)
    context = {"page": page, "rows": rows, "may_raise": may_raise}
    return TemplateResponse(request, "workflows/signals/my_concerns.html", context)


@login_required
@require_GET
def signal_queue(request):
    """The school's triage queue, risk first; filters by source, status (waiting by default) and school."""
    user = request.user
    if not signals.may_read_queue(user):
        raise _refused()
    schools = scoping.within_roles(user, School, care_access.QUEUE_ROLES).order_by("code")
    many_schools = len(schools[:2]) > 1
    form = QueueFilterForm(request.GET or None, schools=schools, many=many_schools)
    data = form.cleaned_data if form.is_valid() else {"status": SignalStatus.OPEN}
    status = data.get("status") or SignalStatus.OPEN
    queue = signals.signal_queue_for(
        user, source=data.get("source") or "", status="" if status == "all" else status, school=data.get("school")
    )
    page = Paginator(queue, PAGE_SIZE).get_page(request.GET.get("page"))
    now = timezone.now()
    rows = [
        {
            "url": reverse("care:signal_detail", args=[s.pk]), "tier": s.tier, "tier_label": s.get_tier_display(),
            "source": s.get_source_display(), "reason": s.reason,
            "student": f"{mask_name(s.student.name)} · {s.student.school_class}",
            "school": s.school.name if many_schools else "", "raised_at": s.raised_at, "due_at": s.due_at,
            "overdue": s.status == SignalStatus.OPEN and s.due_at is not None and s.due_at < now,
            "status": s.get_status_display(), "open": s.status == SignalStatus.OPEN,
        }
        for s in page
    ]  # fmt: skip
    audit.record(AccessAction.VIEW, object_type=audit.label(Signal), object_ids=[s.pk for s in page])
    scope_roles = scoping.scope_for(user).roles
    from roster.roles import Role

    context = {
        "form": form, "page": page, "rows": rows, "many_schools": many_schools,
        "summary": signals.queue_summary(user, now),
        "concern_url": reverse("care:concern_new") if scope_roles & care_access.CONCERN_ROLES else "",
        "hotline_url": reverse("care:hotline") if Role.DISTRICT_CENTRE in scope_roles else "",
    }  # fmt: skip
    return TemplateResponse(request, "workflows/signals/queue.html", context)


def _case_url(case: Case | None) -> str:
    if case is None:
        return ""
    process = workflow_models.main_processes().filter(case=case).order_by("-pk").first()
    return CaseFlow.instance.reverse("process_detail", args=[process.pk]) if process else ""


TRIAGE_FORMS = {"open": OpenCaseForm, "add": AddToCaseForm, "none": NoActionForm}


@login_required
def signal_detail(request, pk: int):
    """One signal: what was seen, by whom, when; the student's open case; and, for the school's psychology teachers
    while it waits, the three triage actions."""
    user = request.user
    signal = (
        signals.queue_signals(user)
        .select_related("student__school_class", "school", "raised_by", "decided_by", "case")
        .filter(pk=pk)
        .first()
    ) if signals.may_read_queue(user) else None  # fmt: skip
    if signal is None:
        raise _refused(pk=pk)
    may_triage = signal.status == SignalStatus.OPEN and care_access.may_triage(user, signal)
    active = Case.objects.filter(student_id=signal.student_id, status__in=ACTIVE_STATUSES).first()
    forms = {
        "open": OpenCaseForm(initial={"tier": signals.queue_tier(signal.tier)}, prefix="open"),
        "add": AddToCaseForm(prefix="add"),
        "none": NoActionForm(prefix="none"),
    }
    if request.method == "POST":
        action = request.POST.get("action")
        if not may_triage or action not in TRIAGE_FORMS:
            audit.record(
                AccessAction.CHANGE, object_type=audit.label(Signal), object_ids=[pk], outcome=AccessOutcome.DENIED
            )
            if signal.status != SignalStatus.OPEN:
                messages.error(request, signals.already_triaged(signal))
                return HttpResponseRedirect(reverse("care:signal_detail", args=[pk]))
            raise Http404
        form = forms[action] = TRIAGE_FORMS[action](request.POST, prefix=action)
        if form.is_valid():
            data = form.cleaned_data
            try:
                if action == "open":
                    signals.signal_open_case(user, signal, tier=data["tier"], note=data["note"])
                elif action == "add":
                    signals.signal_add_to_case(user, signal, data["note"])
                else:
                    signals.signal_no_action(user, signal, data["reason"])
            except (ValidationError, PermissionDenied) as error:
                form.add_error(None, error.messages if isinstance(error, ValidationError) else str(error))
            else:
                audit.record(AccessAction.CHANGE, object_type=audit.label(Signal), object_ids=[pk])
                messages.success(request, _("Triaged. The person who raised it is told it was seen."))
                return HttpResponseRedirect(reverse("care:signals"))
    else:
        audit.record(AccessAction.VIEW, object_type=audit.label(Signal), object_ids=[pk])
    raiser = signal.raised_by
    context = {
        "signal": signal, "student": _student_label(user, signal.student, school=True),
        "raiser": (raiser.name or raiser.username) if raiser else _("The system"),
        "decider": (signal.decided_by.name or signal.decided_by.username) if signal.decided_by else _("The system"),
        "overdue": signal.status == SignalStatus.OPEN and signal.due_at and signal.due_at < timezone.now(),
        "may_triage": may_triage, "forms": forms, "active_case": active,
        "active_case_url": _case_url(active) if active and scoping.can_view(user, active) else "",
        "case_url": _case_url(signal.case) if signal.case and scoping.can_view(user, signal.case) else "",
        "queue_url": reverse("care:signals"),
    }  # fmt: skip
    return TemplateResponse(request, "workflows/signals/detail.html", context)
