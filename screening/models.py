"""Screening instruments and tiering rule sets, stored as versioned, immutable definitions.

A definition row never changes after it is saved: a new wording, cut-off or rule is a new version, so a campaign
that pinned a version keeps scoring the same way and stored results are never silently rewritten.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords


class Instrument(models.Model):
    code = models.CharField(_("code"), max_length=20)
    version = models.PositiveIntegerField(_("version"))
    name = models.CharField(_("name"), max_length=200)
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
