"""Admin pages for leave (休学, medical leave; roster.leaves): the school admin records a leave and, later, the return.

Recording the return sets the student back to enrolled and asks the school's psychology teachers for a 复学评估 (a
signal in their triage queue). Scoped like every admin page (ScopedAdminMixin): out of scope is 404.
"""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from roster import scoping
from roster.admin_scoped import ScopedAdminMixin
from roster.leaves import leave_record, leave_record_refusal, leave_return, leave_return_refusal
from roster.masking import mask_name
from roster.models import Leave, Student, StudentStatus

STARTS_LABEL = _("Leave starts on")


class LeaveAddForm(forms.ModelForm):
    class Meta:
        model = Leave
        fields = ["student", "kind", "starts_on", "expected_return_on", "reason"]

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        students = Student.objects.filter(status=StudentStatus.ACTIVE)
        self.fields["student"].queryset = scoping.parents_for_new(user, Leave, students) if user else students.none()
        self.fields["expected_return_on"].required = True

    def clean(self):
        data = super().clean()
        if data.get("student") and data.get("starts_on"):
            problem = leave_record_refusal(
                data["student"], starts_on=data["starts_on"], expected_return_on=data.get("expected_return_on")
            )
            if problem:
                raise ValidationError(problem)
        return data


class LeaveReturnForm(forms.ModelForm):
    class Meta:
        model = Leave
        fields = ["returned_on"]

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["returned_on"].help_text = _(
            "The day the student came back. Saving sets the student back to enrolled and asks the school's "
            "psychology teachers for a return assessment (复学评估)."
        )

    def clean_returned_on(self):
        day = self.cleaned_data.get("returned_on")
        if day is not None:
            problem = leave_return_refusal(Leave.objects.get(pk=self.instance.pk), returned_on=day)
            if problem:
                raise ValidationError(problem)
        return day


@admin.register(Leave)
class LeaveAdmin(ScopedAdminMixin, SimpleHistoryAdmin):
    reads_logged = True  # a child's leave, often medical
    list_display = ["masked_name", "school", "kind", "starts", "expected_return_on", "returned_on"]
    list_display_links = ["masked_name"]
    list_filter = ["kind", ("returned_on", admin.EmptyFieldListFilter)]
    list_select_related = ["student", "school"]
    raw_id_fields = ["student"]
    ordering = ["returned_on", "-starts_on"]

    @admin.display(description=_("student"))
    def masked_name(self, obj):
        return f"{mask_name(obj.student.name)} · {obj.student.student_no}"

    def get_form(self, request, obj=None, change=False, **kwargs):
        base = LeaveReturnForm if obj is not None else LeaveAddForm
        form = super().get_form(request, obj, change=change, form=base, **kwargs)
        user = request.user

        class Bound(form):
            def __init__(self, *args, **kw):
                super().__init__(*args, user=user, **kw)

        return Bound

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        shown = ["student", "school", "kind", "starts", "expected_return_on", "reason", "recorded_by"]
        return shown + (["returned_on"] if obj.returned_on else [])

    def get_fields(self, request, obj=None):
        if obj is None:
            return LeaveAddForm.Meta.fields
        return ["student", "school", "kind", "starts", "expected_return_on", "reason", "recorded_by", "returned_on"]

    @admin.display(description=STARTS_LABEL)
    def starts(self, obj):
        return obj.starts_on

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and (obj is None or obj.returned_on is None)

    def save_model(self, request, obj, form, change):
        if not change:
            data = form.cleaned_data
            leave = leave_record(
                request.user, student=data["student"], kind=data["kind"], starts_on=data["starts_on"],
                expected_return_on=data["expected_return_on"], reason=data.get("reason", ""),
            )  # fmt: skip
            obj.pk, obj.school_id, obj.recorded_by_id = leave.pk, leave.school_id, leave.recorded_by_id
            obj._state.adding = False
        elif form.cleaned_data.get("returned_on"):
            leave_return(request.user, leave=obj, returned_on=form.cleaned_data["returned_on"])

    def get_changeform_initial_data(self, request):
        return {"starts_on": timezone.localdate(), **super().get_changeform_initial_data(request)}
