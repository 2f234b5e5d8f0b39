"""Forms of the signal pages (workflows.views_signals): a concern, a hotline call, the queue's filters, triage.

May import: roster, screening, cases.
"""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from cases.concerns import CONCERN_REPORTERS, DETAIL_MAX, Seen, Urgency
from cases.models import Reporter, SignalSource, SignalStatus
from screening.definitions import RiskTier

CASE_TIERS = [(t.value, t.label) for t in RiskTier if t != RiskTier.GREEN]


class ConcernForm(forms.Form):
    """Two taps: what was seen (chips, a few words) and how urgent (the button pressed)."""

    seen = forms.MultipleChoiceField(
        label=_("What did you see?"), choices=Seen.choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    detail = forms.CharField(
        label=_("A few words (optional)"), required=False, max_length=DETAIL_MAX,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": _("What happened, when, who else knows")}),
    )  # fmt: skip
    reporter = forms.ChoiceField(
        label=_("Who saw it?"), initial=Reporter.STAFF, widget=forms.RadioSelect,
        choices=[(r.value, r.label) for r in Reporter if r in CONCERN_REPORTERS],
    )  # fmt: skip
    urgency = forms.ChoiceField(label=_("How urgent?"), choices=Urgency.choices)


class HotlineForm(ConcernForm):
    reporter = None
    detail = forms.CharField(
        label=_("What the caller said"), required=False, max_length=DETAIL_MAX,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": _("Who called, what they said, how to call back")}),
    )  # fmt: skip


class QueueFilterForm(forms.Form):
    source = forms.ChoiceField(
        label=_("Source"), required=False, choices=[("", _("All sources")), *SignalSource.choices]
    )
    status = forms.ChoiceField(
        label=_("Status"), required=False, initial=SignalStatus.OPEN,
        choices=[(SignalStatus.OPEN.value, SignalStatus.OPEN.label),
                 *[(s.value, s.label) for s in SignalStatus if s != SignalStatus.OPEN], ("all", _("All"))],
    )  # fmt: skip
    school = forms.ModelChoiceField(label=_("School"), required=False, queryset=None, empty_label=_("All schools"))

    def __init__(self, *args, schools, many: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["school"].queryset = schools
        if not many:  # one school in view: nothing to choose
            del self.fields["school"]


class OpenCaseForm(forms.Form):
    tier = forms.ChoiceField(label=_("Tier of the case"), choices=CASE_TIERS)
    note = forms.CharField(
        label=_("Note for the case (optional)"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )


class AddToCaseForm(forms.Form):
    note = forms.CharField(label=_("Note (optional)"), required=False, widget=forms.Textarea(attrs={"rows": 2}))


class NoActionForm(forms.Form):
    reason = forms.CharField(label=_("Why no action?"), widget=forms.Textarea(attrs={"rows": 2}))
