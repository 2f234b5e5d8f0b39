"""The form of each step of the case process. A form only collects and checks what the person typed; the step's rules
(team composition, consent before a referral, separation of duties) are cases.services', run by workflows.services.

`step_fields()` gives the keyword arguments of the step's service function (workflows.services.STEPS).
May import: roster, screening, cases.
"""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from cases import access as case_access
from cases.models import (
    ACTIVE_STATUSES,
    EMERGENCY_REASON_MIN_LENGTH,
    Agency,
    Case,
    CaseTeamMember,
    Consent,
    ContactChannel,
    FollowUpOutcome,
    SafetyOutcome,
    TeamSeat,
)
from cases.services import emergency_access_schools, lowering_needs_approval, team_proposal
from cases.tiers import SEAT_ROLE, tier_rule
from roster.models import RoleAssignment, School
from roster.roles import Role
from screening.definitions import RiskTier

User = get_user_model()
TEXT = {"rows": 4}


class StaffChoiceField(forms.ModelChoiceField):
    """A staff picker: each colleague by their name (their login only when the roster has no name)."""

    def label_from_instance(self, obj) -> str:
        return obj.get_short_name()


class StepForm(forms.Form):
    def __init__(self, *args, case: Case, user, **kwargs):
        self.case, self.user = case, user
        super().__init__(*args, **kwargs)

    def step_fields(self) -> dict:
        return dict(self.cleaned_data)


class DecisionForm(StepForm):
    """An approval: approve or reject, with a note."""

    approve = forms.TypedChoiceField(
        label=_("Decision"), coerce=lambda v: v == "yes", widget=forms.RadioSelect,
        choices=[("yes", _("Approve")), ("no", _("Reject"))],
    )  # fmt: skip
    note = forms.CharField(label=_("Note"), widget=forms.Textarea(attrs=TEXT), required=False)


class TriageForm(StepForm):
    tier = forms.ChoiceField(label=_("Confirmed tier"), choices=RiskTier.choices)
    reason = forms.CharField(label=_("Reason"), widget=forms.Textarea(attrs=TEXT))
    lowering_needs_approval = forms.BooleanField(
        label=_("I ask for an independent approval to lower the tier (it stays as it is until then)"), required=False
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tier"].initial = self.case.tier
        self.fields["tier"].help_text = _(
            "Raising takes effect at once. Lowering an orange or red tier needs an independent approval; green "
            "closes the case as a false positive once it is evaluated a level higher."
        )

    def clean(self):
        data = super().clean()
        tier = data.get("tier")
        lowering = tier and tier != RiskTier.GREEN and lowering_needs_approval(self.case, tier)
        if lowering and not data.get("lowering_needs_approval"):
            self.add_error(
                "lowering_needs_approval",
                _("A %(tier)s tier is never lowered at triage alone: tick the box to ask for an independent approval.")
                % {"tier": RiskTier(self.case.tier).label},
            )
        return data

    def step_fields(self) -> dict:
        return {"tier": self.cleaned_data["tier"], "reason": self.cleaned_data["reason"]}


class StaffingForm(StepForm):
    """二包一 / 三包一: one person per seat of the case's tier, proposed from the roster."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        proposal = team_proposal(self.case)
        for seat in tier_rule(self.case.tier).seats:
            self.fields[seat] = StaffChoiceField(
                label=TeamSeat(seat).label, queryset=self._holders(seat), initial=proposal.get(seat)
            )

    def _holders(self, seat: str):
        role = SEAT_ROLE[seat]
        where = {"school_class__school_id": self.case.school_id} if role == Role.HOMEROOM_TEACHER else {
            "school_id": self.case.school_id
        }  # fmt: skip
        holders = RoleAssignment.objects.filter(role=role, **where).values("user_id")
        return User.objects.filter(pk__in=holders, is_active=True).order_by("last_name", "first_name", "username")

    def step_fields(self) -> dict:
        return {"members": dict(self.cleaned_data)}


class InterviewForm(StepForm):
    note = forms.CharField(label=_("What the interview found"), widget=forms.Textarea(attrs={"rows": 8}))
    restricted = forms.BooleanField(label=_("Restricted (psychology teachers and the principal only)"), required=False)


class ParentContactForm(StepForm):
    guardian = forms.CharField(label=_("Who was contacted"), max_length=50)
    channel = forms.ChoiceField(label=_("Channel"), choices=ContactChannel.choices)
    outcome = forms.CharField(label=_("Outcome"), widget=forms.Textarea(attrs=TEXT))
    consent = forms.ChoiceField(label=_("Consent to intervention"), choices=Consent.choices)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Whom to call, shown above the form to those who see names on the case (cases.access); nobody else.
        self.guardian_contact = None
        if case_access.names_shown(self.user, self.case):
            student = self.case.student
            self.guardian_contact = {"name": student.guardian_name, "phone": student.guardian_phone}
            self.fields["guardian"].initial = student.guardian_name


class PlanForm(StepForm):
    """一生一策: goals, up to three measures each with a responsible team member, a review date."""

    MEASURES = 3

    goals = forms.CharField(label=_("Goals"), widget=forms.Textarea(attrs=TEXT))
    review_on = forms.DateField(label=_("Review date"), widget=forms.DateInput(attrs={"type": "date"}))
    needs_referral = forms.BooleanField(label=_("Calls for a referral to a hospital"), required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        team = User.objects.filter(
            pk__in=self.case.team.filter(left_at__isnull=True).values("user_id")
        ).order_by("username")  # fmt: skip
        for i in range(1, self.MEASURES + 1):
            self.fields[f"measure_{i}"] = forms.CharField(
                label=_("Measure %(n)s") % {"n": i}, required=i == 1, widget=forms.Textarea(attrs={"rows": 2})
            )
            self.fields[f"responsible_{i}"] = StaffChoiceField(
                label=_("Responsible for measure %(n)s") % {"n": i}, queryset=team, required=False
            )

    def clean_review_on(self):
        review_on = self.cleaned_data["review_on"]
        if review_on < timezone.localdate():
            raise forms.ValidationError(_("The review date cannot be in the past."))
        return review_on

    def clean(self):
        data = super().clean()
        for i in range(1, self.MEASURES + 1):
            if data.get(f"measure_{i}") and not data.get(f"responsible_{i}"):
                self.add_error(f"responsible_{i}", _("Name who is responsible for this measure."))
        return data

    def step_fields(self) -> dict:
        data = self.cleaned_data
        measures = [
            (data[f"measure_{i}"], data[f"responsible_{i}"])
            for i in range(1, self.MEASURES + 1)
            if data.get(f"measure_{i}")
        ]
        return {
            "goals": data["goals"], "review_on": data["review_on"], "needs_referral": data["needs_referral"],
            "measures": measures,
        }  # fmt: skip


class ReferralRequestForm(StepForm):
    institution = forms.CharField(label=_("Institution"), max_length=100)
    reason = forms.CharField(label=_("Reason"), widget=forms.Textarea(attrs=TEXT))
    parental_consent = forms.ChoiceField(label=_("Parental consent"), choices=Consent.choices)


class ReferralMadeForm(StepForm):
    referred_on = forms.DateField(label=_("Referred on"), widget=forms.DateInput(attrs={"type": "date"}))
    outcome = forms.CharField(label=_("Outcome"), widget=forms.Textarea(attrs=TEXT))


class FollowUpForm(StepForm):
    note = forms.CharField(label=_("Note"), widget=forms.Textarea(attrs={"rows": 6}))
    reassessment_score = forms.IntegerField(label=_("Re-assessment score"), min_value=0, required=False)
    outcome = forms.ChoiceField(label=_("Outcome"), choices=FollowUpOutcome.choices, widget=forms.RadioSelect)
    to_tier = forms.ChoiceField(
        label=_("New tier (escalation or de-escalation)"), choices=[("", "—"), *RiskTier.choices], required=False
    )
    reason = forms.CharField(label=_("Reason for the change or the closure"), required=False, widget=forms.Textarea(
        attrs={"rows": 2}
    ))  # fmt: skip

    def clean(self):
        data = super().clean()
        changing = data.get("outcome") in (FollowUpOutcome.ESCALATE, FollowUpOutcome.DE_ESCALATE)
        if changing and not data.get("to_tier"):
            self.add_error("to_tier", _("Choose the tier to change to."))
        if changing and data.get("to_tier") == self.case.tier:
            self.add_error("to_tier", _("The case already has this tier."))
        return data


class ClosureDecisionForm(DecisionForm):
    note = None
    evaluation = forms.CharField(label=_("Evaluation (结案评估)"), widget=forms.Textarea(attrs=TEXT), required=False)


class TierChangeDecisionForm(DecisionForm):
    note = None


class SafetyAssessmentForm(StepForm):
    """The brief safety assessment (NIMH ASQ pathway) before the student goes home."""

    outcome = forms.ChoiceField(label=_("Outcome"), choices=SafetyOutcome.choices, widget=forms.RadioSelect)
    parents_informed = forms.BooleanField(label=_("Parents informed"), required=False)
    note = forms.CharField(label=_("What the assessment found"), widget=forms.Textarea(attrs=TEXT))


class DistrictSupportForm(StepForm):
    """The district centre joins the case: the first line of its coordination log."""

    agency = forms.ChoiceField(label=_("Who was contacted"), choices=Agency.choices)
    contact = forms.CharField(label=_("Name or office"), max_length=100)
    agreed = forms.CharField(label=_("What was agreed"), widget=forms.Textarea(attrs=TEXT))


class LeaverHandOverForm(StepForm):
    """移交或结案: the student has left the system; the case is handed over outside it, or its closure proposed."""

    outcome = forms.ChoiceField(
        label=_("What happens to the case"), widget=forms.RadioSelect,
        choices=[("handed_over", _("Handed over to a school or institution outside the system")),
                 ("close", _("Propose closing the case (evaluated a level higher, as any closure)"))],
    )  # fmt: skip
    institution = forms.CharField(label=_("Handed over to (school or institution)"), max_length=100, required=False)
    agency = forms.ChoiceField(label=_("Kind of receiver"), choices=Agency.choices, initial=Agency.SCHOOL)
    note = forms.CharField(label=_("What was handed over, and to whom"), widget=forms.Textarea(attrs=TEXT),
                           required=False)  # fmt: skip
    reason = forms.CharField(label=_("Reason for the closure"), widget=forms.Textarea(attrs=TEXT), required=False)

    def clean(self):
        data = super().clean()
        if data.get("outcome") == "handed_over" and not (data.get("institution") or "").strip():
            self.add_error("institution", _("Name the school or institution that takes the case over."))
        if data.get("outcome") == "close" and not (data.get("reason") or "").strip():
            self.add_error("reason", _("Give the reason for closing the case."))
        return data


class TransferAcceptForm(StepForm):
    """档案移交: the receiving school takes the case; its team is re-staffed here and its open steps come here."""

    confirm = forms.BooleanField(
        label=_("We take over this case: our school is responsible for it from now on"), required=True
    )

    def step_fields(self) -> dict:
        return {}


class SupportRequestForm(forms.Form):
    reason = forms.CharField(label=_("What support does the case need?"), widget=forms.Textarea(attrs=TEXT))


class CoordinationForm(forms.Form):
    agency = forms.ChoiceField(label=_("Who was contacted"), choices=Agency.choices)
    contact = forms.CharField(label=_("Name or office"), max_length=100)
    agreed = forms.CharField(label=_("What was agreed"), widget=forms.Textarea(attrs=TEXT))


FORMS: dict[str, type[StepForm]] = {
    "triage": TriageForm,
    "approve_false_positive": ClosureDecisionForm,
    "staffing": StaffingForm,
    "interview": InterviewForm,
    "parent_contact": ParentContactForm,
    "plan": PlanForm,
    "request_referral": ReferralRequestForm,
    "approve_referral": DecisionForm,
    "make_referral": ReferralMadeForm,
    "follow_up": FollowUpForm,
    "approve_tier_change": TierChangeDecisionForm,
    "approve_lowering": TierChangeDecisionForm,
    "approve_closure": ClosureDecisionForm,
    "safety_assessment": SafetyAssessmentForm,
    "district_support": DistrictSupportForm,
    "accept_transfer": TransferAcceptForm,
    "hand_over": LeaverHandOverForm,
}


# --- Forms of the case pages (not steps) --------------------------------------------------------------------------


class ReopenForm(forms.Form):
    reason = forms.CharField(label=_("Why reopen the case?"), widget=forms.Textarea(attrs={"rows": 2}))


class ReferralFeedbackForm(forms.Form):
    feedback_received_on = forms.DateField(
        label=_("Feedback received on"), widget=forms.DateInput(attrs={"type": "date"})
    )
    feedback = forms.CharField(label=_("The institution's feedback"), widget=forms.Textarea(attrs=TEXT))


class HandOverForm(forms.Form):
    """A principal hands a leaving colleague's open tasks and team seats to a successor, in one action."""

    leaver = StaffChoiceField(label=_("Colleague leaving the role"), queryset=None)
    successor = StaffChoiceField(label=_("Successor"), queryset=None)

    def __init__(self, *args, school, **kwargs):
        super().__init__(*args, **kwargs)
        at_school = RoleAssignment.objects.filter(Q(school=school) | Q(school_class__school=school)).values("user_id")
        # A colleague whose role is already gone still holds seats until the handover.
        seated = CaseTeamMember.objects.filter(
            case__school=school, case__status__in=ACTIVE_STATUSES, left_at__isnull=True
        ).values("user_id")  # fmt: skip
        self.fields["leaver"].queryset = User.objects.filter(Q(pk__in=at_school) | Q(pk__in=seated)).order_by(
            "username"
        )  # fmt: skip
        self.fields["successor"].queryset = User.objects.filter(pk__in=at_school, is_active=True).order_by("username")

    def clean(self):
        data = super().clean()
        if data.get("leaver") and data.get("leaver") == data.get("successor"):
            raise forms.ValidationError(_("Choose someone else to take over."))
        return data


class ReviewFilterForm(forms.Form):
    """The auditor's filters on a case review: one person, a date range."""

    person = forms.CharField(label=_("Person (name or username)"), max_length=150, required=False)
    since = forms.DateField(label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}))


class EmergencyAccessForm(forms.Form):
    """Break the glass: the student's school, their exact student number there, and why
    (cases.services.emergency_access_grant). Student numbers repeat between schools, so the school is named."""

    school = forms.ModelChoiceField(
        label=_("School"), queryset=School.objects.none(),
        help_text=_("The school where the student is on the roll: the number is looked up there only."),
    )  # fmt: skip
    student_no = forms.CharField(
        label=_("Student number"), max_length=32,
        help_text=_("The exact number at that school: nothing is searched."),
    )  # fmt: skip
    reason = forms.CharField(
        label=_("Why you must act on this case now"), min_length=EMERGENCY_REASON_MIN_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("The district centre and the case's school read this."),
    )  # fmt: skip

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["school"]
        field.queryset = emergency_access_schools(user)  # the city's schools, by district then name
        field.label_from_instance = lambda school: f"{school.district.name} · {school}"
