"""Admin pages for school moves (roster.moves): the list to review, pending first, and one move's review page.

The receiving school's admin (or a district or city admin over it) confirms or rejects; the admins of the sending
district see the move too, read-only. Out of scope is 404, logged like every refused admin read (ScopedAdminMixin).
"""

from django.contrib import admin, messages
from django.contrib.admin import RelatedOnlyFieldListFilter
from django.contrib.admin.utils import unquote
from django.db.models import Case, IntegerField, Value, When
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from roster import scoping
from roster.admin_scoped import ScopedAdminMixin
from roster.identity import mask_national_id
from roster.masking import mask_name
from roster.models import Gender, MoveStatus, School, SchoolMove, StudentStatus
from roster.moves import MoveRefused, may_decide, move_confirm, move_reject


def _identified(user, move: SchoolMove) -> bool:
    """Whether the reader sees the students of the receiving school identified (a role at that school)."""
    return scoping.identities_visible(user, School.objects.filter(pk=move.to_school_id)).exists()


def _comparison(user, move: SchoolMove) -> list[dict]:
    """Side by side: what the receiving file says and the record of the student it matched. The record's name and
    date of birth are shown only where they are the file's own (nothing the receiving school did not know), masked
    otherwise; above a school everything identifying is masked and only "same" or "different" is said."""
    row, student = move.row, move.student
    identified = _identified(user, move)
    file_birth, record_birth = row.get("birth_date") or "", student.birth_date.isoformat() if student.birth_date else ""
    file_name, record_name = row.get("name", ""), student.name
    file_status = row.get("status") or StudentStatus.ACTIVE

    def person(file_value: str, record_value: str, masked) -> tuple[str, str]:
        shown_file = file_value if identified else masked(file_value)
        same = file_value == record_value
        return shown_file, (shown_file if same else masked(record_value))

    names = person(file_name, record_name, mask_name)
    births = person(file_birth, record_birth, lambda value: "***" if value else "")
    tails = (mask_national_id(row.get("national_id_tail", "")), mask_national_id(student.national_id_tail))
    genders = (Gender(row["gender"]).label if row.get("gender") else "", student.get_gender_display())
    rows = [
        (_("school"), str(move.to_school), str(move.from_school), None),
        (_("class"), str(move.to_class), str(move.from_class), None),
        (_("student number"), move.to_student_no, move.from_student_no, None),
        (_("status"), StudentStatus(file_status).label, StudentStatus(move.from_status).label, None),
        (_("name"), *names, file_name == record_name),
        (_("gender"), *genders, row.get("gender") == student.gender),
        (_("date of birth"), *births, bool(file_birth) and file_birth == record_birth),
        (_("national student number"), *tails, None if not all(tails) else tails[0] == tails[1]),
    ]
    return [{"label": label, "file": a, "record": b, "same": same} for label, a, b, same in rows]


class PendingFirst(admin.SimpleListFilter):
    """The status filter, pending first in the list of choices as in the list itself."""

    title = _("status")
    parameter_name = "status__exact"

    def lookups(self, request, model_admin):
        return MoveStatus.choices

    def queryset(self, request, queryset):
        return queryset.filter(status=self.value()) if self.value() in MoveStatus.values else queryset


@admin.register(SchoolMove)
class SchoolMoveAdmin(ScopedAdminMixin, SimpleHistoryAdmin):
    reads_logged = True  # names of students of two schools
    list_display = ["created_at", "masked_name", "from_school", "to_school", "to_student_no", "basis", "status"]
    list_display_links = ["created_at", "masked_name"]
    list_filter = [PendingFirst, ("to_school", RelatedOnlyFieldListFilter), ("from_school", RelatedOnlyFieldListFilter)]
    list_select_related = ["from_school", "to_school"]
    list_per_page = 50
    change_form_template = "admin/roster/schoolmove/review.html"

    def get_ordering(self, request):
        pending_first = Case(
            When(status=MoveStatus.PENDING, then=Value(0)), default=Value(1), output_field=IntegerField()
        )
        return [pending_first.asc(), "-created_at", "-pk"]

    @admin.display(description=_("name"))
    def masked_name(self, obj):
        return mask_name(obj.row.get("name", ""))

    def has_add_permission(self, request):
        return False  # moves are found by the student import

    def has_change_permission(self, request, obj=None):
        if not self.admin_site.has_permission(request):
            return False
        return obj is None or may_decide(request.user, obj)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        move = self.get_object(request, unquote(object_id))  # 404 (logged) unless visible
        decides = move.status == MoveStatus.PENDING and may_decide(request.user, move)
        if request.method == "POST":
            if not may_decide(request.user, move):  # the sending district's admins read, never decide
                raise Http404(gettext("Not found, or not in your scope."))
            self._decide(request, move)
            return redirect(request.path)
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Review a school move"),
            "opts": self.model._meta,
            "move": move,
            "comparison": _comparison(request.user, move),
            "decides": decides,
            "identified": _identified(request.user, move),
            "has_view_permission": True,
            "original": move,
        }
        return TemplateResponse(request, self.change_form_template, context)

    def _decide(self, request, move: SchoolMove) -> None:
        note = request.POST.get("note", "")
        try:
            if "_confirm" in request.POST:
                move_confirm(request.user, move, note)
                self.message_user(request, gettext("Confirmed: the student now belongs to %s.") % move.to_school)
            elif "_reject" in request.POST:
                move_reject(request.user, move, note)
                self.message_user(request, gettext("Recorded: a new student was added to %s.") % move.to_school)
        except MoveRefused as refused:
            self.message_user(request, refused.message, level=messages.ERROR)
