"""Screening instruments and tiering rule sets, stored as versioned, immutable definitions.

A definition row never changes after it is saved: a new wording, cut-off or rule is a new version, so a campaign
that pinned a version keeps scoring the same way and stored results are never silently rewritten.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from simple_history.models import HistoricalRecords

from screening.definitions import RiskTier


class Instrument(models.Model):
    code = models.CharField(_("code"), max_length=20)
    version = models.PositiveIntegerField(_("version"))
    name = models.CharField(pgettext_lazy("of a place or thing", "name"), max_length=200)
    source = models.TextField(_("source"))
    licence = models.TextField(_("licence"))
    definition = models.JSONField(_("definition"))
    created_at = models.DateTimeField(_("added at"), auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("instrument")
        verbose_name_plural = _("instruments")
        ordering = ["code", "-version"]
        constraints = [models.UniqueConstraint(fields=["code", "version"], name="instrument_version_unique")]

    def __str__(self) -> str:
        return f"{self.code} v{self.version}"

    def parsed(self):
        from screening.definitions import parse_instrument

        return parse_instrument(self.definition)


class RuleSet(models.Model):
    code = models.CharField(_("code"), max_length=50)
    version = models.PositiveIntegerField(_("version"))
    population = models.TextField(_("population"), blank=True)
    definition = models.JSONField(_("definition"))
    created_at = models.DateTimeField(_("added at"), auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("tiering rule set")
        verbose_name_plural = _("tiering rule sets")
        ordering = ["code", "-version"]
        constraints = [models.UniqueConstraint(fields=["code", "version"], name="ruleset_version_unique")]

    def __str__(self) -> str:
        return f"{self.code} v{self.version}"


class CampaignTerm(models.TextChoices):
    AUTUMN = "autumn", _("Autumn term")
    SPRING = "spring", _("Spring term")


class CampaignStatus(models.TextChoices):
    SCHEDULED = "scheduled", _("Scheduled")
    OPEN = "open", _("Open")
    CLOSED = "closed", _("Closed")


def default_target_grades() -> list[int]:
    return [4, 5, 6, 7, 8, 10, 11]  # seed 000: 小学4~6年级，初中1~2年级，高中1~2年级


class CampaignTarget(models.TextChoices):
    GRADES = "grades", _("The target grades of its schools")
    GROUP = "group", _("A special group")
    SIGNALS = "signals", _("Students with open signals")
    LIST = "list", _("An uploaded list")


class Campaign(models.Model):
    """A screening round (测评批次): which instruments, scored with which pinned rule-set version, for whom, when."""

    name = models.CharField(_("campaign name"), max_length=100)
    school_year = models.CharField(_("school year"), max_length=9, help_text=_("e.g. 2026-2027"))
    term = models.CharField(_("term"), max_length=8, choices=CampaignTerm.choices)
    instruments = models.ManyToManyField(Instrument, through="CampaignInstrument", verbose_name=_("instruments"))
    ruleset = models.ForeignKey(RuleSet, on_delete=models.PROTECT, verbose_name=_("tiering rule set"))
    target_grades = models.JSONField(_("target grades"), default=default_target_grades)
    # Targeted re-screening (issue 20, seed 001's key times): instead of the target grades, a special group (an
    # exam-year group is its grade), the students with open signals, or an uploaded list. Resolved into
    # `target_students` when the campaign is saved, so the portal and the proctor page read one list.
    target = models.CharField(_("who is screened"), max_length=8, choices=CampaignTarget.choices,
                              default=CampaignTarget.GRADES)  # fmt: skip
    target_group = models.ForeignKey(
        "roster.SpecialGroup", on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        verbose_name=_("special group"),
    )  # fmt: skip
    target_students = models.ManyToManyField("roster.Student", blank=True, related_name="+",
                                             verbose_name=_("students screened"))  # fmt: skip
    schools = models.ManyToManyField("roster.School", related_name="campaigns", verbose_name=_("schools"))
    opens_at = models.DateTimeField(_("opens at"))
    closes_at = models.DateTimeField(_("closes at"))
    # Moved by the django-q2 schedule (screening.tasks.campaigns_open_and_close), never by hand; the portal takes
    # answers only while the status is open and the clock is inside the window.
    status = models.CharField(
        _("status"), max_length=10, choices=CampaignStatus.choices, default=CampaignStatus.SCHEDULED, editable=False
    )
    created_by = models.ForeignKey("roster.User", on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("screening campaign")
        verbose_name_plural = _("screening campaigns")
        ordering = ["-opens_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(closes_at__gt=models.F("opens_at")), name="campaign_closes_after_it_opens"
            )
        ]

    def __str__(self) -> str:
        return self.name


class CampaignInstrument(models.Model):
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE)
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position"]
        constraints = [models.UniqueConstraint(fields=["campaign", "instrument"], name="instrument_once_per_campaign")]

    def __str__(self) -> str:
        return f"{self.campaign_id}:{self.instrument_id}"


class ResultSource(models.TextChoices):
    PORTAL = "portal", _("Student portal")
    IMPORT = "import", _("Imported from another platform")
    OBSERVER = "observer", _("Teacher checklist")  # 排查表: an observer-rated instrument, filled by a teacher


class ScreeningResult(models.Model):
    """One student's answers in one campaign, scored and tiered. Re-scoring keeps the earlier values in history."""

    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="results")
    student = models.ForeignKey("roster.Student", on_delete=models.PROTECT, related_name="screening_results")
    source = models.CharField(_("source"), max_length=8, choices=ResultSource.choices)
    answers = models.JSONField(_("answers"))  # {instrument code: {item number: answer key}}
    scores = models.JSONField(_("scores"))  # {instrument code: {"scales": {...}, "bands": {...}}}
    tier = models.CharField(_("tier"), max_length=8, choices=RiskTier.choices)
    fired_rules = models.JSONField(_("rules that fired"), default=list)  # rule ids; reasons come from `ruleset`
    ruleset = models.ForeignKey(RuleSet, on_delete=models.PROTECT, verbose_name=_("scored with"))
    submitted_at = models.DateTimeField(_("submitted at"))
    # The one-time code the student answered with (portal results); used once, so a replay finds this row.
    access_code = models.OneToOneField(
        "roster.AccessCode", on_delete=models.PROTECT, null=True, blank=True, related_name="screening_result",
        verbose_name=_("access code"),
    )  # fmt: skip
    # A result imported from another platform's export: which mapping read it (`screening.import_mappings`; blank for
    # our own template and the portal) and the platform's own warning level as it wrote it. Kept beside our tier for
    # comparison; our tier is always our scoring's, never this.
    platform = models.CharField(_("source platform"), max_length=16, blank=True, default="")
    platform_level = models.CharField(_("platform's warning level"), max_length=32, blank=True, default="")
    # An observer-rated result (a teacher checklist): the teacher who filled it in.
    rated_by = models.ForeignKey(
        "roster.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("rated by")
    )
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("screening result")
        verbose_name_plural = _("screening results")
        ordering = ["-submitted_at"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "student"], name="one_result_per_student_and_campaign")
        ]
        indexes = [models.Index(fields=["campaign", "tier"])]

    def __str__(self) -> str:
        return f"{self.campaign_id}:{self.student_id}"

    @property
    def flagged(self) -> bool:
        return self.tier != RiskTier.GREEN
