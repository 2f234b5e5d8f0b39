"""The ledger pages (台账) under /reports/ledgers/: key-help, referral and closed-case ledgers, each a filtered,
paginated list of masked rows linking to the case page, and its XLSX export (every row of the user's scope matching
the filters).

Thin views: which rows a user gets is cases.ledgers' (built on roster.scoping); this module names the columns, reads
the filters and logs what it shows (roster.audit: a page as a list of its cases, an export as an export of them).
A user without a ledger (a homeroom teacher, an admin) gets a logged 404, as anything out of reach.
May import: roster, screening, cases.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from cases import access as case_access
from cases import ledgers
from cases.models import Case, Consent, Decision
from roster import audit
from roster.masking import mask_name
from roster.models import AccessAction
from roster.views_exports import export_response
from workflows.flows import CaseFlow
from workflows.models import main_processes

PAGE_SIZE = 50


# --- Filters --------------------------------------------------------------------------------------------------------


class LedgerFilterForm(forms.Form):
    """District and school, offered only within the user's ledger scope (a forged id is invalid, never a widening).
    The schools are narrowed to the district chosen; the district is offered only to those who see more than one."""

    def __init__(self, data, *, user):
        super().__init__(data)
        districts = ledgers.ledger_districts(user)
        self.fields["district"] = forms.ModelChoiceField(
            label=_("District"), queryset=districts, required=False, empty_label=_("All")
        )
        chosen = districts.filter(pk=_int(data.get("district"))).first() if _int(data.get("district")) else None
        self.fields["school"] = forms.ModelChoiceField(
            label=_("School"), queryset=ledgers.ledger_schools(user, chosen), required=False, empty_label=_("All")
        )
        self.order_fields(["district", "school"])

    def clean(self):
        cleaned = super().clean()
        district, school = cleaned.get("district"), cleaned.get("school")
        if district is not None and school is not None and school.district_id != district.pk:
            self.add_error("school", _("This school belongs to another district."))
        return cleaned


def _int(raw) -> int | None:
    try:
        return int(raw)
    except (TypeError, ValueError):
        return None


def _choices(options) -> list:
    return [("", _("All")), *options]


class _DateRange(forms.Form):
    since = forms.DateField(label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since > until:
            self.add_error("until", _("The end date is before the start date."))
        return cleaned


class KeyHelpFilterForm(LedgerFilterForm):
    tier = forms.ChoiceField(label=_("Tier"), required=False,
                             choices=_choices((t.value, t.label) for t in ledgers.KEY_HELP_TIERS))  # fmt: skip
    contact_overdue_only = forms.BooleanField(label=_("No contact within the follow-up interval"), required=False)


STAGE_LABELS = ledgers.STAGE_LABELS


class ReferralFilterForm(_DateRange, LedgerFilterForm):
    stage = forms.ChoiceField(label=_("Stage"), required=False,
                              choices=_choices((s, STAGE_LABELS[s]) for s in ledgers.ReferralStage.ORDER))  # fmt: skip


class ClosedFilterForm(_DateRange, LedgerFilterForm):
    tier = forms.ChoiceField(label=_("Tier at closure"), required=False,
                             choices=_choices((t.value, t.label) for t in ledgers.CLOSED_TIERS))  # fmt: skip


# --- Columns: one definition for the page and the export ------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    label: str
    value: Callable  # row → the cell's text or number (masked where it names a student)
    flag: Callable | None = None  # row → a CSS class marking the cell on the page ("overdue"), or ""
    tier: Callable | None = None  # row → the tier whose colour the cell shows


@dataclass(frozen=True)
class Cell:
    text: object
    flag: str = ""
    tier: str = ""
    url: str = ""


def _day(value) -> str:
    if value is None:
        return ""
    return (timezone.localdate(value) if hasattr(value, "tzinfo") else value).isoformat()


def _case_no(case) -> str:
    return f"#{case.pk}"


def _student(case) -> str:
    return mask_name(case.student.name)


def _label(choices, value) -> str:
    return str(dict(choices).get(value, value or ""))


def _case_columns(case_of: Callable) -> tuple[Column, ...]:
    """The columns naming the case and its student, for a row whose case is `case_of(row)`."""
    return (
        Column(_("Case"), lambda r: _case_no(case_of(r))),
        Column(_("School"), lambda r: case_of(r).school.name),
        Column(_("Class"), lambda r: str(case_of(r).student.school_class)),
        Column(_("Student number"), lambda r: case_of(r).student.student_no),
        Column(_("Student"), lambda r: _student(case_of(r))),
    )


def _itself(row):
    return row


def _referral_case(row):
    return row.case


def _days(duration) -> int | str:
    return duration.days if duration is not None else ""


def _days_to_referral(referral) -> int | str:
    if referral.referred_on is None:
        return ""
    return (referral.referred_on - timezone.localdate(referral.requested_at)).days


KEY_HELP_COLUMNS = (
    *_case_columns(_itself),
    Column(_("Tier"), lambda c: c.get_tier_display(), tier=lambda c: c.tier),
    Column(_("Status"), lambda c: c.get_status_display()),
    Column(_("Opened"), lambda c: _day(c.opened_at)),
    Column(_("School leader"), lambda c: c.leader or ""),
    Column(_("Psychology teacher"), lambda c: c.psychologist or ""),
    Column(_("Homeroom teacher"), lambda c: c.homeroom or ""),
    Column(_("Latest plan"), lambda c: _day(c.plan_written_at)),
    Column(
        _("Plan review"),
        lambda c: _day(c.plan_review_on),
        lambda c: "overdue" if c.plan_review_on and c.plan_review_on < timezone.localdate() else "",
    ),  # fmt: skip
    Column(
        _("Last contact"),
        lambda c: _day(c.last_contact_at),
        lambda c: "overdue" if ledgers.contact_overdue(c, timezone.now()) else "",
    ),  # fmt: skip
)

REFERRAL_COLUMNS = (
    *_case_columns(_referral_case),
    Column(_("Tier"), lambda r: r.case.get_tier_display(), tier=lambda r: r.case.tier),
    Column(_("Institution"), lambda r: r.institution),
    Column(_("Parental consent"), lambda r: _label(Consent.choices, r.parental_consent)),
    Column(_("Requested on"), lambda r: _day(r.requested_at)),
    Column(_("Requested by"), lambda r: _person(r.requested_by)),
    Column(_("Decision"), lambda r: _label(Decision.choices, r.decision)),
    Column(_("Decided by"), lambda r: _person(r.decided_by)),
    Column(_("Decided on"), lambda r: _day(r.decided_at)),
    Column(_("Referred on"), lambda r: _day(r.referred_on)),
    Column(_("Days to referral"), _days_to_referral),
    Column(_("Feedback received on"), lambda r: _day(r.feedback_received_on)),
    Column(_("Stage"), lambda r: str(STAGE_LABELS[r.stage])),
)

CLOSED_COLUMNS = (
    *_case_columns(_itself),
    Column(_("Tier at closure"), lambda c: c.get_tier_display(), tier=lambda c: c.tier),
    Column(_("Opened"), lambda c: _day(c.opened_at)),
    Column(_("Closed"), lambda c: _day(c.closed_at)),
    Column(_("Days open"), lambda c: _days(c.duration)),
    Column(_("Closure proposed by"), lambda c: c.closure_proposer or ""),
    Column(_("Closure approved by"), lambda c: c.closure_approver or ""),
)


def _person(user) -> str:
    """A staff member as the ledgers name them (as cases.ledgers' team columns do): name, else username."""
    return (user.name or user.username) if user else ""


# --- The three ledgers ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ledger:
    name: str  # URL names: reports:ledger_<name>, reports:ledger_<name>_xlsx
    title: str
    form: type[LedgerFilterForm]
    rows: Callable  # (user, **cleaned filters) → queryset (cases.ledgers)
    columns: tuple[Column, ...]
    case_path: str  # from a row to its case id: "pk" or "case_id"

    def case_id(self, row) -> int:
        return row.pk if self.case_path == "pk" else row.case_id


KEY_HELP = Ledger("key_help", _("Key-help ledger"), KeyHelpFilterForm, ledgers.key_help_ledger, KEY_HELP_COLUMNS,
                  "pk")  # fmt: skip
REFERRALS = Ledger("referrals", _("Referral ledger"), ReferralFilterForm, ledgers.referral_ledger, REFERRAL_COLUMNS,
                   "case_id")  # fmt: skip
CLOSED = Ledger("closed", _("Closed-case ledger"), ClosedFilterForm, ledgers.closed_ledger, CLOSED_COLUMNS, "pk")
LEDGERS = (KEY_HELP, REFERRALS, CLOSED)


def _refused(action: str) -> Http404:
    """No ledger for this user: logged, and answered as missing (the access matrix's rule)."""
    return case_access.refused(audit.label(Case), action=action)


def _filtered(request, ledger: Ledger, action: str) -> tuple[LedgerFilterForm, QuerySet | None]:
    if not ledgers.reads_ledgers(request.user):
        raise _refused(action)
    form = ledger.form(request.GET, user=request.user)
    if not form.is_valid():
        return form, None
    filters = {k: v for k, v in form.cleaned_data.items() if v not in (None, "", False)}
    return form, ledger.rows(request.user, **filters)


def _with_process(rows: QuerySet, ledger: Ledger) -> QuerySet:
    """Each row with its case's latest process (`process_pk`): the case page's URL, in the same query."""
    ref = "pk" if ledger.case_path == "pk" else "case_id"
    latest = main_processes().filter(case=OuterRef(ref)).order_by("-pk").values("pk")[:1]
    return rows.annotate(process_pk=Subquery(latest))


def _page_rows(ledger: Ledger, rows: Iterable) -> list[list[Cell]]:
    shown = []
    for row in rows:
        cells = [
            Cell(c.value(row), flag=c.flag(row) if c.flag else "", tier=c.tier(row) if c.tier else "")
            for c in ledger.columns
        ]
        if row.process_pk is not None:  # a case whose process the task worker is still starting has no page yet
            cells[0] = Cell(cells[0].text, url=CaseFlow.instance.reverse("process_detail", args=[row.process_pk]))
        shown.append(cells)
    return shown


def ledger_page(request, ledger: Ledger):
    form, rows = _filtered(request, ledger, AccessAction.LIST)
    page, shown = None, []
    if rows is not None:
        page = Paginator(_with_process(rows, ledger), PAGE_SIZE).get_page(request.GET.get("page"))
        audit.record(AccessAction.LIST, object_type=audit.label(Case), object_ids=[ledger.case_id(r) for r in page])
        shown = _page_rows(ledger, page)
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "ledger": ledger, "ledgers": [(item, reverse(f"reports:ledger_{item.name}")) for item in LEDGERS],
        "form": form, "page": page, "rows": shown, "headers": [c.label for c in ledger.columns],
        "export_url": reverse(f"reports:ledger_{ledger.name}_xlsx") + (f"?{query.urlencode()}" if query else ""),
        "show_district": len(form.fields["district"].queryset) > 1,
        "export_background_rows": settings.EXPORT_BACKGROUND_ROWS,
    }  # fmt: skip
    return render(request, "reports/ledger.html", context)


def kind_name(ledger: Ledger) -> str:
    """The ledger's export kind (roster.exports; registered by workflows.ledger_exports)."""
    return f"ledger_{ledger.name}"


def ledger_parameters(ledger: Ledger, query) -> dict:
    """The filters of a ledger's query string as an export job keeps them: one value each, the form's fields only."""
    names = {*ledger.form.base_fields, "district", "school"}  # the last two are added per user
    return {key: value for key, value in query.items() if key in names and value not in ("", None)}


def ledger_xlsx(request, ledger: Ledger):
    """Every row of the user's scope matching the filters, as XLSX (workflows.ledger_exports writes it): at once up
    to settings.EXPORT_BACKGROUND_ROWS rows, else by the task worker, the person shown its progress and notified
    when it is ready (roster.exports). Every hand-over of the file is logged with every case id in it."""
    form, rows = _filtered(request, ledger, AccessAction.EXPORT)
    if rows is None:
        raise Http404  # an invalid filter exports nothing (the page says why)
    return export_response(
        request, kind=kind_name(ledger), parameters=ledger_parameters(ledger, request.GET), rows=rows.count()
    )


def _view(ledger: Ledger, handler: Callable):
    @never_cache  # masked names, tiers and dates of named students
    @login_required
    @require_GET
    def view(request):
        return handler(request, ledger)

    view.__name__ = view.__qualname__ = f"ledger_{ledger.name}{'_xlsx' if handler is ledger_xlsx else ''}"
    return view


key_help = _view(KEY_HELP, ledger_page)
key_help_xlsx = _view(KEY_HELP, ledger_xlsx)
referrals = _view(REFERRALS, ledger_page)
referrals_xlsx = _view(REFERRALS, ledger_xlsx)
closed = _view(CLOSED, ledger_page)
closed_xlsx = _view(CLOSED, ledger_xlsx)
