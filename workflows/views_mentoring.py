"""Mentors', homeroom and subject teachers' pages under /care/ (app "care"): "my students" with their last talk and home
visit, the forms that record a talk (谈心谈话) or a home visit (家访), a student's page with the records the person
wrote, and the coverage figures (talks per term, home visits per school year) per class, school and district.

Thin views: who may record what is cases.care_access's, the writes cases.care_records', the reads cases.care_selectors'
(built on roster.scoping). Nothing here shows a screening result, a tier, a case or a case note. Out of reach and
missing are the same logged 404. May import: roster, screening, cases.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache

from cases import care_access, care_records, care_selectors
from roster import audit, scoping
from roster.models import AccessAction, AccessOutcome, District, School, SchoolClass, Student
from roster.roles import Role

STUDENT_TYPE = audit.label(Student)
COVERAGE_TYPE = "cases.care_coverage"


def _refused(object_type: str, object_id=None, *, writing: bool = False) -> Http404:
    action = AccessAction.CHANGE if writing else AccessAction.VIEW
    audit.record(action, object_type=object_type, object_ids=[] if object_id is None else [object_id],
                 outcome=AccessOutcome.DENIED)  # fmt: skip
    return Http404()


def concern_url(student_id: int) -> str:
    """Where "上报关注" goes (the concern form of the signal queue), or "" while it is not there."""
    try:
        return f"{reverse('care:concern_new')}?student={student_id}"
    except NoReverseMatch:
        return ""


def _int(raw) -> int | None:
    try:
        return int(raw)
    except (TypeError, ValueError):
        return None


# --- My students ----------------------------------------------------------------------------------------------------


def _student_row(student: Student, user, taught: dict[int, str]) -> dict:
    """What a row shows and offers: a talk for a mentee, a visit for a mentee or the homeroom's class, a concern for
    everyone who teaches the student. Dates only of the records the person may write."""
    homeroom = taught.get(student.school_class_id) == Role.HOMEROOM_TEACHER
    talk = student.mentee
    visit = student.mentee or homeroom
    roles = []
    if student.mentee:
        roles.append(gettext("mentee"))
    if student.school_class_id in taught:
        roles.append(str(Role(taught[student.school_class_id]).label))
    return {
        "student": student,
        "roles": "、".join(roles),
        "last_talk": student.last_talk if talk else None,
        "last_visit": student.last_visit if visit else None,
        "talk_url": reverse("care:talk_new", args=[student.pk]) if talk else "",
        "visit_url": reverse("care:visit_new", args=[student.pk]) if visit else "",
        "concern_url": concern_url(student.pk),
        "page_url": reverse("care:student", args=[student.pk]),
        "shows_talks": talk,
        "shows_visits": visit,
    }


@never_cache
@login_required
def my_students(request):
    """The students the person teaches: their mentees, then each class they are homeroom or subject teacher of."""
    user = request.user
    if not care_selectors.has_students_page(user):
        raise _refused(STUDENT_TYPE)
    students, taught = care_selectors.my_students_for(user)
    mentees, by_class = [], {}
    for student in students:
        row = _student_row(student, user, taught)
        if student.mentee:
            mentees.append(row)
        if student.school_class_id in taught:
            by_class.setdefault(student.school_class_id, (student.school_class, taught[student.school_class_id], []))
            by_class[student.school_class_id][2].append(row)
    groups = []
    if mentees:
        groups.append({"title": gettext("My mentees"), "rows": mentees, "kind": "mentees"})
    for school_class, role, rows in by_class.values():
        groups.append({"title": f"{school_class} · {Role(role).label}", "rows": rows, "kind": role})
    audit.record(AccessAction.LIST, object_type=STUDENT_TYPE, object_ids=[s.pk for s in students])
    context = {
        "groups": groups,
        "coverage_url": reverse("care:coverage") if care_selectors.may_read_coverage(user) else "",
        "records": any(row["shows_talks"] or row["shows_visits"] for group in groups for row in group["rows"]),
        "term": care_selectors.term_period(),
        "year": care_selectors.school_year_period(),
    }
    return render(request, "workflows/care/my_students.html", context)


def _my_student(user, student_id, *, writing: bool = False) -> tuple[Student, dict]:
    if not care_selectors.has_students_page(user):
        raise _refused(STUDENT_TYPE, student_id, writing=writing)
    students, taught = care_selectors.my_students_for(user)
    student = students.filter(pk=_int(student_id) or 0).first()
    if student is None:
        raise _refused(STUDENT_TYPE, student_id, writing=writing)
    return student, _student_row(student, user, taught)


@never_cache
@login_required
def student_page(request, student_id):
    """One of the person's students: the talks and visits they wrote about them (nobody else's), and the buttons."""
    student, row = _my_student(request.user, student_id)
    talks, visits = care_selectors.records_by(request.user, student)
    audit.record(AccessAction.VIEW, object_type=STUDENT_TYPE, object_ids=[student.pk])
    return render(request, "workflows/care/student.html", {"row": row, "talks": talks, "visits": visits})


# --- Recording a talk or a visit ------------------------------------------------------------------------------------


class _DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self):
        super().__init__(format="%Y-%m-%d")


class TalkForm(forms.Form):
    held_on = forms.DateField(label=_("Date of the talk"), widget=_DateInput())
    topic = forms.CharField(
        label=_("Topic"), max_length=100,
        widget=forms.TextInput(attrs={"placeholder": _("e.g. exam stress, friends, family")}),
    )  # fmt: skip
    note = forms.CharField(label=_("Notes"), required=False, widget=forms.Textarea(attrs={"rows": 4}))
    worrying = forms.BooleanField(
        label=_("Something worrying: tell the psychology teacher"), required=False,
        help_text=_("A concern goes to the school's psychology teacher, who decides what to do."),
    )  # fmt: skip


class VisitForm(forms.Form):
    visited_on = forms.DateField(label=_("Date of the visit"), widget=_DateInput())
    met = forms.CharField(label=_("Who was met"), max_length=100,
                          widget=forms.TextInput(attrs={"placeholder": _("e.g. mother, grandparents")}))  # fmt: skip
    note = forms.CharField(label=_("Notes"), required=False, widget=forms.Textarea(attrs={"rows": 4}))
    worrying = forms.BooleanField(
        label=_("Something worrying: tell the psychology teacher"), required=False,
        help_text=_("A concern goes to the school's psychology teacher, who decides what to do."),
    )  # fmt: skip


def _record(request, student_id, *, form_class, allowed, service, date_field: str, heading, done):
    student, row = _my_student(request.user, student_id, writing=request.method == "POST")
    if not allowed(request.user, student):
        raise _refused(STUDENT_TYPE, student.pk, writing=request.method == "POST")
    form = form_class(request.POST or None, initial={date_field: timezone.localdate()})
    if request.method == "POST" and form.is_valid():
        try:
            record = service(actor=request.user, student=student, **form.cleaned_data)
        except ValidationError as error:
            if hasattr(error, "error_dict"):
                for field, errors in error.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                form.add_error(None, error.messages)
        except PermissionDenied:
            raise _refused(STUDENT_TYPE, student.pk, writing=True) from None
        else:
            audit.record(AccessAction.CHANGE, object_type=STUDENT_TYPE, object_ids=[student.pk])
            message = done
            if record.signal_id:
                message = gettext("%(done)s The psychology teacher has been told.") % {"done": done}
            messages.success(request, message)
            return redirect(reverse("care:my_students"))
    if request.method == "GET":
        audit.record(AccessAction.VIEW, object_type=STUDENT_TYPE, object_ids=[student.pk])
    else:
        audit.record(AccessAction.CHANGE, object_type=STUDENT_TYPE, object_ids=[student.pk],
                     outcome=AccessOutcome.DENIED)  # fmt: skip
    return render(request, "workflows/care/record_form.html", {"form": form, "row": row, "heading": heading})


@never_cache
@login_required
def talk_new(request, student_id):
    return _record(
        request, student_id, form_class=TalkForm, allowed=care_access.may_record_talk,
        service=care_records.talk_record, date_field="held_on", heading=_("Record a talk"),
        done=gettext("Talk recorded."),
    )  # fmt: skip


@never_cache
@login_required
def visit_new(request, student_id):
    return _record(
        request, student_id, form_class=VisitForm, allowed=care_access.may_record_home_visit,
        service=care_records.home_visit_record, date_field="visited_on", heading=_("Record a home visit"),
        done=gettext("Home visit recorded."),
    )  # fmt: skip


# --- Coverage -------------------------------------------------------------------------------------------------------


@never_cache
@login_required
def coverage(request):
    """Talks this term and home visits this school year: per district (a city), per school (a district, or ?district=),
    per class (a school, or ?school=), and one class's students not yet visited (?class=, masked names)."""
    user = request.user
    if not care_selectors.may_read_coverage(user):
        raise _refused(COVERAGE_TYPE)
    classes = care_selectors.coverage_classes(user)
    crumbs = [(gettext("All"), reverse("care:coverage"))]
    chosen_class = None
    district_id, school_id, class_id = (_int(request.GET.get(k)) for k in ("district", "school", "class"))
    if class_id:
        chosen_class = classes.filter(pk=class_id).select_related("school__district").first()
        if chosen_class is None:
            raise _refused(COVERAGE_TYPE, class_id)
        school_id, level = chosen_class.school_id, "class"
        classes = classes.filter(pk=class_id)
    if school_id:
        school = School.objects.filter(pk=school_id, pk__in=classes.values("school_id")).select_related("district")
        school = school.first()
        if school is None:
            raise _refused(COVERAGE_TYPE, school_id)
        crumbs += [(str(school.district), f"?district={school.district_id}"), (str(school), f"?school={school.pk}")]
        classes, level = classes.filter(school=school), "class"
    elif district_id:
        district = District.objects.filter(pk=district_id, pk__in=classes.values("school__district_id")).first()
        if district is None:
            raise _refused(COVERAGE_TYPE, district_id)
        crumbs.append((str(district), f"?district={district.pk}"))
        classes, level = classes.filter(school__district=district), "school"
    else:  # the widest view the person has: their districts, else their schools, else their classes
        if classes.order_by().values("school__district_id").distinct().count() > 1:
            level = "district"
        else:
            level = "school" if classes.order_by().values("school_id").distinct().count() > 1 else "class"
    if chosen_class is not None:
        crumbs.append((str(chosen_class), f"?class={chosen_class.pk}"))
    figures = care_selectors.coverage_for(user, level=level, classes=classes)
    listable = set()
    if level == "class":
        listable = set(scoping.within_roles(user, classes, care_selectors.UNVISITED_ROLES).values_list("pk", flat=True))
    unvisited = None
    one_class = chosen_class or (figures.rows[0].node if level == "class" and len(figures.rows) == 1 else None)
    if one_class is not None and one_class.pk in listable:
        unvisited = care_selectors.unvisited_in(one_class)
        audit.record(AccessAction.LIST, object_type=STUDENT_TYPE, object_ids=[s["pk"] for s in unvisited])
    else:
        audit.record(AccessAction.VIEW, object_type=COVERAGE_TYPE, object_ids=[])
    rows = [(row, _drill(level, row.node, listable)) for row in figures.rows]
    context = {
        "figures": figures, "rows": rows, "level_label": care_selectors.LEVEL_LABEL[level], "level": level,
        "crumbs": crumbs, "unvisited": unvisited, "one_class": one_class,
    }  # fmt: skip
    return render(request, "workflows/care/coverage.html", context)


def _drill(level: str, node, listable: set[int]) -> str:
    if level == "district":
        return f"?district={node.pk}"
    if level == "school":
        return f"?school={node.pk}"
    return f"?class={node.pk}" if isinstance(node, SchoolClass) and node.pk in listable else ""
