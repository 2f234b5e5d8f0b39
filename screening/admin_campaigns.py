"""Campaign admin: city and district admins/centres create campaigns over schools in their scope.

A campaign's instruments, rule set, target and schools are fixed once created (results depend on them); its name
and window can move until it closes, and a targeted campaign's students can be resolved again until it opens.
Every write goes through screening.campaigns.
"""

from django import forms
from django.contrib import admin
from django.contrib.admin.widgets import AdminSplitDateTime, FilteredSelectMultiple
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Case, Count, OuterRef, Subquery, Value, When
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from roster import scoping
from roster.models import District, School, SpecialGroup
from roster.stages import grades_for_stages
from roster.uploads import FileRefused
from screening import campaigns as campaign_services
from screening.definitions import OBSERVER
from screening.models import Campaign, CampaignTarget, Instrument, RuleSet, default_target_grades


def grade_choices():
    return [(g, _("Grade %(grade)d") % {"grade": g}) for g in range(1, 13)]


class Coverage:
    ALL = "all"
    DISTRICT = "district"
    SCHOOLS = "schools"
    CHOICES = [
        (ALL, _("Every school in my scope (city-wide for city roles)")),
        (DISTRICT, _("All schools of one district")),
        (SCHOOLS, _("Chosen schools")),
    ]


class NamedSplitDateTime(AdminSplitDateTime):
    """The admin's date and time boxes, each with a name: Django prints "Date:" and "Time:" beside them as plain text,
    which labels neither box for a screen reader (axe-core: label, critical)."""

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        labels = (context["date_label"], context["time_label"])
        for subwidget, label in zip(context["widget"]["subwidgets"], labels, strict=True):
            subwidget["attrs"]["aria-label"] = str(label).rstrip(":：")
        return context


class SchoolPicker(FilteredSelectMultiple):
    """Django's two-box picker, with static/js/admin-select-filter.js giving its search icons the image role their
    aria-label needs (Django's SelectFilter2.js draws them as bare spans: axe-core aria-prohibited-attr, serious)."""

    class Media:  # named after SelectFilter2.js, so that the merged media load it first
        js = ["admin/js/SelectFilter2.js", "js/admin-select-filter.js"]


# Mood, then worry, then the suicide-risk questions last (the ASQ acuity question follows a yes).
USUAL_ORDER = ["PHQ9", "GAD7", "ASQ"]


def _newest(model):
    newest = model.objects.filter(code=OuterRef("code")).order_by("-version").values("pk")[:1]
    usual = Case(*(When(code=code, then=Value(n)) for n, code in enumerate(USUAL_ORDER)), default=Value(99))
    return model.objects.filter(pk=Subquery(newest)).order_by(usual, "code")


class InstrumentChoices(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj):
        if (obj.definition or {}).get("rater") == OBSERVER:
            return _("%(instrument)s — teacher checklist, filled by homeroom teachers") % {"instrument": obj.name}
        return obj.name


TARGET_HELP = _(
    "Seed 001: besides the yearly screening, re-screen special groups at the key times — 春季入学 (spring term "
    "start), 考试季 (exam season), 毕业季 (graduation season). A special group, the students with open signals or an "
    "uploaded list is resolved into the campaign's students when it is saved, within the chosen schools; it can be "
    "refreshed until the campaign opens."
)


class CampaignCreateForm(forms.ModelForm):
    chosen_instruments = InstrumentChoices(
        label=_("Instruments"), queryset=Instrument.objects.none(), widget=forms.CheckboxSelectMultiple,
        help_text=_(
            "Asked in this order. The newest version of each instrument is used. A teacher checklist is a campaign "
            "of its own: homeroom teachers fill it for each student of their class; students get no code for it."
        ),
    )  # fmt: skip
    target = forms.ChoiceField(
        label=_("Who is screened"), choices=CampaignTarget.choices, widget=forms.RadioSelect,
        initial=CampaignTarget.GRADES, help_text=TARGET_HELP, required=False,
    )  # fmt: skip
    grades = forms.TypedMultipleChoiceField(
        label=_("Target grades"), choices=grade_choices, coerce=int, widget=forms.CheckboxSelectMultiple,
        initial=default_target_grades, required=False,
        help_text=_("For “the target grades of its schools” only."),
    )  # fmt: skip
    target_group = forms.ModelChoiceField(
        label=_("Special group"), queryset=SpecialGroup.objects.none(), required=False,
        help_text=_("For “a special group” only. An exam-year group (九年级, 高三) is the students of its grade."),
    )  # fmt: skip
    target_file = forms.FileField(
        label=_("List of students"), required=False,
        help_text=_(
            "For “an uploaded list” only: XLSX or CSV with the columns 学校代码 and 学号. A row naming no enrolled "
            "student of the chosen schools is an error, and then nothing is saved."
        ),
    )  # fmt: skip
    coverage = forms.ChoiceField(label=_("Schools"), choices=Coverage.CHOICES, widget=forms.RadioSelect)
    district = forms.ModelChoiceField(label=_("District"), queryset=District.objects.none(), required=False)
    chosen_schools = forms.ModelMultipleChoiceField(
        label=_("Chosen schools"), queryset=School.objects.none(), required=False,
        widget=SchoolPicker(_("schools"), is_stacked=False),
    )  # fmt: skip

    class Meta:
        model = Campaign
        fields = ["name", "school_year", "term", "ruleset", "opens_at", "closes_at"]
        field_classes = {"opens_at": forms.SplitDateTimeField, "closes_at": forms.SplitDateTimeField}
        widgets = {"opens_at": NamedSplitDateTime, "closes_at": NamedSplitDateTime}

    def __init__(self, *args, actor=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.actor = actor
        self.schools_allowed = campaign_services.schools_for_campaigns(actor).select_related("district")
        self.fields["chosen_instruments"].queryset = _newest(Instrument)
        self.fields["chosen_instruments"].initial = [
            i for i in self.fields["chosen_instruments"].queryset if (i.definition or {}).get("rater") != OBSERVER
        ]
        self.fields["target_group"].queryset = SpecialGroup.objects.filter(active=True).order_by("pk")
        self.fields["ruleset"].queryset = _newest(RuleSet)
        self.fields["ruleset"].initial = self.fields["ruleset"].queryset.first()
        self.fields["district"].queryset = District.objects.filter(
            pk__in=self.schools_allowed.values("district_id")
        ).order_by("division_code")
        self.fields["chosen_schools"].queryset = self.schools_allowed.order_by("code")
        self.fields["coverage"].initial = Coverage.ALL
        # Only grades some school in scope has (its stage): no grade 11 for a district of primary schools.
        offered = grades_for_stages(self.schools_allowed.order_by().values_list("stage", flat=True).distinct())
        self.fields["grades"].choices = [(g, label) for g, label in grade_choices() if g in offered]
        self.fields["grades"].initial = [g for g in default_target_grades() if g in offered]

    def _schools(self, data):
        coverage = data.get("coverage")
        if coverage == Coverage.DISTRICT:
            if not data.get("district"):
                raise ValidationError({"district": _("Choose the district.")})
            return list(self.schools_allowed.filter(district=data["district"]))
        if coverage == Coverage.SCHOOLS:
            if not data.get("chosen_schools"):
                raise ValidationError({"chosen_schools": _("Choose at least one school.")})
            return list(data["chosen_schools"])
        return list(self.schools_allowed)

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        order = {pk: n for n, pk in enumerate(self.fields["chosen_instruments"].queryset.values_list("pk", flat=True))}
        data["chosen_instruments"] = sorted(data["chosen_instruments"], key=lambda i: order[i.pk])
        self.chosen = self._schools(data)
        if not self.chosen:
            raise ValidationError(_("There is no school in your scope to screen."))
        campaign_services.school_year_check(data["school_year"])
        campaign_services.ruleset_check(data["ruleset"], data["chosen_instruments"])
        campaign_services.window_check(data["opens_at"], data["closes_at"], now=timezone.now())
        data["target"] = data.get("target") or CampaignTarget.GRADES  # not chosen: the yearly screening
        self.target_list = _target_list(data, self.chosen)
        if data["target"] == CampaignTarget.GRADES and not data.get("grades"):
            raise ValidationError({"grades": _("Choose at least one grade.")})
        campaign_services.target_check(data["target"], data.get("target_group"), self.target_list)
        if data["target"] != CampaignTarget.GRADES and not campaign_services.target_resolve(
            data["target"], school_ids=[s.pk for s in self.chosen], group=data.get("target_group"),
            listed=self.target_list.student_ids if self.target_list is not None else (),
        ):  # fmt: skip
            raise ValidationError({"target": _("Nobody in the chosen schools is in this target; nothing was saved.")})
        return data

    def save(self, commit=True):
        data = self.cleaned_data
        self.instance = campaign_services.campaign_create(
            actor=self.actor, name=data["name"], school_year=data["school_year"], term=data["term"],
            instruments=data["chosen_instruments"], ruleset=data["ruleset"], target_grades=data["grades"] or [],
            schools=self.chosen, opens_at=data["opens_at"], closes_at=data["closes_at"], target=data["target"],
            target_group=data.get("target_group"), target_list=self.target_list,
        )  # fmt: skip
        return self.instance

    def save_m2m(self):
        """The service set the schools and instruments."""


def _target_list(data, schools):
    """The uploaded list read against the campaign's schools (None unless the target is a list with a file)."""
    upload = data.get("target_file")
    if data.get("target") != CampaignTarget.LIST or upload is None:
        return None
    try:
        return campaign_services.target_list_read(upload.read(), upload.name, schools)
    except FileRefused as error:
        raise ValidationError({"target_file": str(error)}) from None


class CampaignChangeForm(forms.ModelForm):
    refresh_target = forms.BooleanField(
        label=_("Resolve who is screened again now"), required=False,
        help_text=_(
            "Before the campaign opens: the group's members and the students with open signals as they are today; "
            "for a list, upload a new one below (or keep the list without the students who have left)."
        ),
    )  # fmt: skip
    target_file = forms.FileField(label=_("New list of students"), required=False,
                                  help_text=_("XLSX or CSV with the columns 学校代码 and 学号."))  # fmt: skip

    class Meta:
        model = Campaign
        fields = ["name", "opens_at", "closes_at"]
        field_classes = {"opens_at": forms.SplitDateTimeField, "closes_at": forms.SplitDateTimeField}
        widgets = {"opens_at": NamedSplitDateTime, "closes_at": NamedSplitDateTime}

    def __init__(self, *args, actor=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.actor = actor
        self.stored = Campaign.objects.get(pk=self.instance.pk)

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        if self.stored.status == "open" and data["opens_at"] != self.stored.opens_at:
            self.add_error("opens_at", _("This campaign is already open; its opening time can no longer change."))
        self.target_list = None
        if data.get("refresh_target") or data.get("target_file"):
            if self.stored.target == CampaignTarget.GRADES or self.stored.status != "scheduled":
                raise ValidationError(_("Only a targeted campaign that has not opened yet can be resolved again."))
            self.target_list = _target_list({**data, "target": self.stored.target}, self.stored.schools.all())
            if self.target_list is not None and self.target_list.errors:
                raise campaign_services.target_list_refusal(self.target_list)
        return data

    def save(self, commit=True):
        data = self.cleaned_data
        self.instance = campaign_services.campaign_reschedule(
            actor=self.actor, campaign=self.stored, name=data["name"], opens_at=data["opens_at"],
            closes_at=data["closes_at"],
        )  # fmt: skip
        if data.get("refresh_target") or self.target_list is not None:
            campaign_services.campaign_target_refresh(
                actor=self.actor, campaign=self.instance, target_list=self.target_list
            )
        return self.instance

    def save_m2m(self):
        pass


@admin.register(Campaign)
class CampaignAdmin(SimpleHistoryAdmin):
    list_display = [
        "name", "school_year", "term", "status", "target", "opens_at", "closes_at", "school_count", "ruleset",
    ]  # fmt: skip
    list_filter = ["status", "school_year", "term", "target"]
    search_fields = ["name"]
    readonly_fields = [
        "status", "school_year", "term", "instrument_list", "ruleset", "target_summary", "school_list", "created_by",
        "created_at",
    ]  # fmt: skip

    def get_queryset(self, request):
        return (
            campaign_services.campaigns_visible(request.user)
            .select_related("ruleset")
            .annotate(school_total=Subquery(_school_counts()))
        )

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404(_("Not found, or not in your scope."))
        return obj

    def history_view(self, request, object_id, extra_context=None):
        self.get_object(request, object_id)  # 404 unless visible; simple-history would fall back to old rows
        return super().history_view(request, object_id, extra_context)

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        self.get_object(request, object_id)
        return super().history_form_view(request, object_id, version_id, extra_context)

    def get_form(self, request, obj=None, **kwargs):
        if obj is not None and not self.has_change_permission(request, obj):
            return forms.modelform_factory(Campaign, fields=[])  # view only: nothing to post
        form = CampaignCreateForm if obj is None else CampaignChangeForm
        actor = request.user

        class Bound(form):
            def __init__(self, *args, **kw):
                super().__init__(*args, actor=actor, **kw)

        return Bound

    def get_fields(self, request, obj=None):
        if obj is None:
            return [
                "name", "school_year", "term", "chosen_instruments", "ruleset", "coverage", "district",
                "chosen_schools", "target", "grades", "target_group", "target_file", "opens_at", "closes_at",
            ]  # fmt: skip
        editable = ["name", "opens_at", "closes_at"] if self.has_change_permission(request, obj) else []
        if editable and obj.target != CampaignTarget.GRADES and obj.status == "scheduled":
            editable += ["refresh_target"] + (["target_file"] if obj.target == CampaignTarget.LIST else [])
        return editable + [f for f in self.get_readonly_fields(request, obj) if f not in editable]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        if self.has_change_permission(request, obj):
            return self.readonly_fields
        return ["name", "opens_at", "closes_at", *self.readonly_fields]

    def save_form(self, request, form, change):
        return form.instance  # written once, by the service, in save_model

    def save_model(self, request, obj, form, change):
        try:
            obj.pk = form.save().pk  # the admin's messages and redirect use obj
        except ValidationError as error:  # raced with the schedule (e.g. closed meanwhile)
            raise PermissionDenied(error.messages[0]) from None

    def save_related(self, request, form, formsets, change):
        pass

    def has_module_permission(self, request):
        return self.admin_site.has_permission(request)

    def has_view_permission(self, request, obj=None):
        return self.admin_site.has_permission(request)

    def has_add_permission(self, request):
        return self.admin_site.has_permission(request) and scoping.may_change_some(request.user, Campaign)

    def has_change_permission(self, request, obj=None):
        if not self.has_add_permission(request):
            return False
        if obj is None:
            return True
        changeable = campaign_services.campaigns_changeable(request.user)
        return obj.status != "closed" and changeable.filter(pk=obj.pk).exists()

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("schools"))
    def school_count(self, obj):
        return obj.school_total

    @admin.display(description=_("instruments"))
    def instrument_list(self, obj):
        return "、".join(str(i) for i in obj.instruments.order_by("campaigninstrument__position"))

    @admin.display(description=_("who is screened"))
    def target_summary(self, obj):
        if obj.target == CampaignTarget.GRADES:
            return _("Grades %(grades)s of its schools") % {"grades": "、".join(str(g) for g in obj.target_grades)}
        label = obj.get_target_display()
        if obj.target == CampaignTarget.GROUP and obj.target_group_id:
            label = f"{label}: {obj.target_group}"
        count = campaign_services.invited_students(obj).count()
        return _("%(target)s — %(count)d students") % {"target": label, "count": count}

    @admin.display(description=_("schools"))
    def school_list(self, obj):
        return "、".join(f"{s.code} {s.name}" for s in obj.schools.order_by("code"))


def _school_counts():
    through = Campaign.schools.through
    return through.objects.filter(campaign_id=OuterRef("pk")).values("campaign_id").annotate(n=Count("pk")).values("n")
