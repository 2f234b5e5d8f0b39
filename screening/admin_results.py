"""Admin for screening results: a read-only, scoped list (masked names, no answers) and the import from other
platforms (django-import-export: choose campaign and file → check → confirm).

Who: roles that read results (`roster.scoping.visible`); in the admin that is the district and city centres and the
district auditor (read-only: no import). School admins manage rosters, not mental-health records: no access.
Results are never edited or deleted here; re-scoring is its own logged action (`screening.rescoring`).
"""

import os

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import RelatedOnlyFieldListFilter
from django.core import signing
from django.db.models import QuerySet
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.timezone import localtime
from django.utils.translation import get_language, ngettext
from django.utils.translation import gettext_lazy as _
from import_export.admin import ImportMixin
from import_export.forms import ConfirmImportForm, ImportForm

from roster import scoping
from roster.admin_scoped import ScopedAdminMixin
from roster.importing import FileRefused
from roster.masking import mask_name
from roster.models import School, Student
from roster.uploads import check_upload
from screening.import_mappings import AUTO, OURS, platform_choices, platforms
from screening.models import Campaign, ScreeningResult
from screening.resources import ScreeningResultResource, SpreadsheetFormat
from screening.results_import import may_import_results, results_import_scope

CONFIRM_SALT = "screening.results-import.confirm"
CONFIRM_MAX_AGE = 6 * 3600  # a preview left open over a working day must be checked again


def campaigns_for_import(user) -> QuerySet:
    """Campaigns with at least one school where `user` may import results."""
    schools = results_import_scope(user, School)
    return Campaign.objects.filter(
        pk__in=Campaign.schools.through.objects.filter(school__in=schools).values("campaign_id")
    ).order_by("-opens_at")


class ResultsImportForm(ImportForm):
    campaign = forms.ModelChoiceField(label=_("Campaign"), queryset=Campaign.objects.none())
    platform = forms.ChoiceField(
        label=_("Source platform"),
        choices=platform_choices,
        initial=AUTO,
        required=False,  # not chosen: told by the headers
        help_text=_("Which system exported the file: its column names and answer codes are read accordingly."),
    )

    field_order = ["campaign", "platform", "resource", "import_file", "format"]

    def __init__(self, formats, resources, *, user, **kwargs):
        super().__init__(formats, resources, **kwargs)
        self.fields["campaign"].queryset = campaigns_for_import(user)
        self.fields["import_file"].label = _("Results file (XLSX, XLS or CSV)")
        self.order_fields(self.field_order)

    def clean_import_file(self):
        upload = self.cleaned_data["import_file"]
        try:
            check_upload(upload)  # too large, or an XLSX that unpacks too large: refused before it is stored
        except FileRefused as refusal:
            raise forms.ValidationError(str(refusal)) from None
        return upload


class ResultsConfirmForm(ConfirmImportForm):
    """The checked file and campaign travel in a signed token, so a forged post can neither swap the campaign nor
    point at another upload (or any other file) in the temporary folder."""

    token = forms.CharField(widget=forms.HiddenInput())

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean(self):
        cleaned = super().clean()
        try:
            signed = signing.loads(cleaned.get("token", ""), salt=CONFIRM_SALT, max_age=CONFIRM_MAX_AGE)
        except signing.BadSignature:
            raise forms.ValidationError(_("This check has expired or is not valid: upload the file again.")) from None
        if signed.get("user") != self.user.pk or signed.get("file") != cleaned.get("import_file_name"):
            raise forms.ValidationError(_("This check has expired or is not valid: upload the file again."))
        campaign = campaigns_for_import(self.user).filter(pk=signed.get("campaign")).first()
        if campaign is None:
            raise forms.ValidationError(_("This campaign is not one you may import results into."))
        cleaned["campaign"] = campaign
        cleaned["platform"] = signed.get("platform") or AUTO
        return cleaned

    @staticmethod
    def sign(user, import_file_name: str, campaign, platform: str = AUTO) -> str:
        return signing.dumps(
            {"user": user.pk, "file": import_file_name, "campaign": campaign.pk, "platform": platform},
            salt=CONFIRM_SALT,
        )


@admin.register(ScreeningResult)
class ScreeningResultAdmin(ScopedAdminMixin, ImportMixin, admin.ModelAdmin):
    resource_classes = [ScreeningResultResource]
    formats = [SpreadsheetFormat]
    import_form_class = ResultsImportForm
    confirm_form_class = ResultsConfirmForm
    import_template_name = "admin/screening/screeningresult/import.html"
    skip_admin_log = True  # 100,000 LogEntry rows would repeat what the history rows already record
    reads_logged = True
    list_per_page = 50
    list_display = ["student_masked", "student_no", "school", "school_class", "campaign_name", "tier",
                    "platform_level_shown", "source", "submitted_at"]  # fmt: skip
    list_filter = ["tier", ("campaign", RelatedOnlyFieldListFilter), "source"]
    list_select_related = ["campaign", "student__school", "student__school_class"]
    search_fields = ["=student__student_no"]
    search_help_text = _("Search by exact student number.")
    fields = ["campaign_name", "student_masked", "student_no", "school", "school_class", "tier",
              "platform_level_shown", "platform_shown", "rules_fired", "scores_summary", "ruleset", "source",
              "submitted_at", "earlier_results"]  # fmt: skip
    readonly_fields = fields

    # --- Permissions: readers see, importers import, nobody edits or deletes ---------------------------------

    def _reads_results(self, request) -> bool:
        if not hasattr(request, "_reads_screening_results"):
            request._reads_screening_results = self.admin_site.has_permission(request) and (
                scoping.within_readers_scope(request.user, Student, ScreeningResult).exists()
            )
        return request._reads_screening_results

    def has_module_permission(self, request):
        return self._reads_results(request)

    def has_view_permission(self, request, obj=None):
        return self._reads_results(request) and (obj is None or scoping.can_view(request.user, obj))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_import_permission(self, request):
        return self._reads_results(request) and may_import_results(request.user)

    # --- List and detail: masked names, never answers ----------------------------------------------------------

    @admin.display(description=_("Campaign"), ordering="campaign__opens_at")
    def campaign_name(self, obj):
        return obj.campaign

    @admin.display(description=_("student"))
    def student_masked(self, obj):
        return mask_name(obj.student.name)

    @admin.display(description=_("student number"), ordering="student__student_no")
    def student_no(self, obj):
        return obj.student.student_no

    @admin.display(description=_("school"), ordering="student__school__code")
    def school(self, obj):
        return obj.student.school

    @admin.display(description=_("class"))
    def school_class(self, obj):
        return obj.student.school_class

    @admin.display(description=_("source platform"))
    def platform_shown(self, obj):
        if not obj.platform:
            return "-"
        mapping = platforms().get(obj.platform)
        return mapping.label if mapping is not None else obj.platform

    @admin.display(description=_("platform's warning level"))
    def platform_level_shown(self, obj):
        # The platform's own words, beside (never instead of) our tier.
        return obj.platform_level or "-"

    @admin.display(description=_("rules that fired"))
    def rules_fired(self, obj):
        reasons = {rule.get("id"): rule.get("reason", {}) for rule in obj.ruleset.definition.get("rules", [])}
        language = "zh-hans" if (get_language() or "").startswith("zh") else "en"
        return format_html_join(
            "",
            "<div>{}</div>",
            ((reasons.get(rule_id, {}).get(language) or rule_id,) for rule_id in obj.fired_rules),
        ) or _("none")

    @admin.display(description=_("scores"))
    def scores_summary(self, obj):
        return format_html_join(
            "",
            "<div>{}: {}</div>",
            (
                (code, "、".join(f"{scale} {total}" for scale, total in score.get("scales", {}).items()))
                for code, score in obj.scores.items()
            ),
        )

    @admin.display(description=_("earlier results"))
    def earlier_results(self, obj):
        rows = obj.history.select_related("history_user", "ruleset").order_by("-history_date", "-history_id")
        return format_html(
            "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>{}</tbody>"
            "</table>",
            _("when"), _("tier"), _("scored with"), _("by"), _("reason"),
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                (
                    (localtime(h.history_date).strftime("%Y-%m-%d %H:%M"), h.get_tier_display(), h.ruleset,
                     h.history_user or "-", h.history_change_reason or "")
                    for h in rows
                ),
            ),
        )  # fmt: skip

    # --- Import: campaign + file → check (nothing written) → confirm -----------------------------------------

    def get_import_context_data(self, **kwargs):
        others = [mapping for mapping in platforms().values() if mapping.code != OURS]
        return {**super().get_import_context_data(**kwargs), "platforms": others}

    def get_import_form_kwargs(self, request):
        return {**super().get_import_form_kwargs(request), "user": request.user}

    def get_confirm_form_kwargs(self, request, import_form=None):
        return {**super().get_confirm_form_kwargs(request, import_form), "user": request.user}

    def get_confirm_form_initial(self, request, import_form):
        initial = super().get_confirm_form_initial(request, import_form)
        if import_form is not None:
            initial["token"] = ResultsConfirmForm.sign(
                request.user,
                os.path.basename(initial["import_file_name"]),
                import_form.cleaned_data["campaign"],
                import_form.cleaned_data.get("platform") or AUTO,
            )
        return initial

    def get_import_resource_kwargs(self, request, **kwargs):
        form = kwargs.get("form")
        cleaned = form.cleaned_data if form is not None and hasattr(form, "cleaned_data") else {}
        return {"campaign": cleaned.get("campaign"), "platform": cleaned.get("platform") or AUTO}

    def get_import_data_kwargs(self, **kwargs):
        return {}

    def import_action(self, request, **kwargs):
        response = super().import_action(request, **kwargs)
        # A check that cannot be confirmed leaves its upload (minors' answers) behind in the temporary folder.
        context = getattr(response, "context_data", None) or {}
        # From request.FILES: a file the reader refused has its error on the field, which drops it from cleaned_data.
        upload = request.FILES.get("import_file")
        stored = getattr(upload, "tmp_storage_name", None)
        if stored and context.get("confirm_form") is None:
            self.get_tmp_storage_class()(name=os.path.basename(stored)).remove()
        return response

    def add_data_read_fail_error_to_form(self, form, e):
        if isinstance(e, FileRefused):
            form.add_error("import_file", str(e))
        else:
            super().add_data_read_fail_error_to_form(form, e)

    def process_result(self, result, request):
        report = result.report
        if not report.written:
            # The file was checked clean, but rows changed in between (a student left, a role was revoked).
            self.message_user(
                request,
                report.refused
                or ngettext(
                    "Nothing was imported: %(count)d row has errors now. Check the file again.",
                    "Nothing was imported: %(count)d rows have errors now. Check the file again.",
                    len(report.error_lines),
                )
                % {"count": len(report.error_lines)},
                level=messages.ERROR,
            )
            return HttpResponseRedirect(reverse("admin:screening_screeningresult_import"))
        self.message_user(
            request,
            ngettext(
                "Imported %(total)d row: %(new)d new, %(updated)d changed, %(unchanged)d unchanged.",
                "Imported %(total)d rows: %(new)d new, %(updated)d changed, %(unchanged)d unchanged.",
                report.total,
            )
            % {"total": report.total, "new": report.new, "updated": report.updated, "unchanged": report.unchanged},
            level=messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("admin:screening_screeningresult_changelist"))
