"""Re-scoring a campaign under another rule-set version: an explicit, logged action that keeps earlier results.

A new rule-set version (changed defaults) never touches stored results by itself: every campaign pins the version it
scores with. Only `campaign_rescore` moves the pin, and it re-scores every stored result of the campaign from its
stored answers with the portal's own code (`screening.scoring`, `screening.services.result_fields`). A result whose
scores, tier and fired rules come out the same is left exactly as it is (no write, no history row, and it keeps the
version it was scored with: nothing is rewritten silently). Every other result is updated with one history row
naming the old and new versions and the actor, so the earlier result stays readable in its history.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from roster import scoping
from roster.models import School
from screening.definitions import DefinitionError, RiskTier, parse_ruleset
from screening.models import Campaign, RuleSet, ScreeningResult
from screening.results_import import (
    BATCH_SIZE,
    ScoreCache,
    ScoredRow,
    results_bulk_write,
    results_flagged_on_commit,
    scored_row,
)
from screening.scoring import AnswerError, tier_for
from screening.services import CampaignDefinitions, campaign_definitions, result_fields

logger = logging.getLogger(__name__)


class RescoreRefused(Exception):
    """The rule set cannot score this campaign, or a stored result cannot be scored; nothing was changed."""


@dataclass
class RescoreReport:
    campaign_id: int
    ruleset_before: str
    ruleset_after: str
    total: int = 0
    changed: int = 0
    rose: int = 0  # results whose tier went up (each sent `student_flagged`)
    tiers_before: dict[str, int] = field(default_factory=dict)
    tiers_after: dict[str, int] = field(default_factory=dict)
    dry_run: bool = False


def parse_ruleset_for(campaign, ruleset: RuleSet, definitions: CampaignDefinitions | None = None):
    """The rule set parsed against the campaign's own instrument versions; RescoreRefused when it cannot score it.

    Rules about an instrument the campaign does not ask are allowed (they never fire), as for the campaign's own
    rule set; a rule set that names none of its instruments would tier everyone green and is refused.
    """
    instruments = (definitions or campaign_definitions(campaign)).instruments
    try:
        parsed = parse_ruleset(ruleset.definition, instruments, allow_absent=True)
    except DefinitionError as error:
        raise RescoreRefused(
            _("Rule set %(ruleset)s cannot score this campaign: %(error)s") % {"ruleset": ruleset, "error": error}
        ) from None
    if not any(rule.when.instrument in instruments for rule in parsed.rules):
        raise RescoreRefused(
            _("Rule set %(ruleset)s has no rule about this campaign's instruments (%(instruments)s).")
            % {"ruleset": ruleset, "instruments": "、".join(instruments)}
        )
    return parsed


def _stored_answers(key: tuple) -> dict[int, str]:
    return {int(number): answer for number, answer in key}


def campaign_rescore(*, actor, campaign: Campaign, ruleset: RuleSet, dry_run: bool = False) -> RescoreReport:
    """Pin `campaign` to `ruleset` and re-score every stored result of it; returns counts (never names or answers).

    Access: city admins, the city centre and superusers (`screening.admin.may_add_definitions`), for a campaign
    whose schools are all in their scope; PermissionDenied for anyone else.
    Audit: a history row on the campaign (the pin) and one per changed result, both with the actor as history_user
    and a change reason naming the old and new versions; an INFO log line with the counts.
    `student_flagged` is sent after commit for every result whose tier rose (green → yellow, yellow → red, ...):
    each rise may call for a case or a more urgent one, while a result that stayed at its tier was flagged when it
    was recorded and a lowered one is de-escalated by people, not by this action.
    Raises RescoreRefused (nothing changed) when the rule set cannot score the campaign or a stored answer no longer
    scores. With `dry_run`, counts what would change and writes nothing.
    """
    from screening.admin import may_add_definitions  # the admin module imports this one's callers

    if not may_add_definitions(actor):
        raise PermissionDenied(_("Only city administrators and the city centre may re-score a campaign."))
    # Definitions are city-wide, campaigns are not: every school the re-scoring touches must be in the actor's scope.
    if campaign.schools.exclude(pk__in=scoping.visible(actor, School).values("pk")).exists():
        raise PermissionDenied(_("This campaign includes schools outside your scope."))
    with transaction.atomic():
        # One re-scoring of a campaign at a time: a second waits, then re-scores from the first one's results.
        campaign = Campaign.objects.select_for_update().select_related("ruleset").get(pk=campaign.pk)
        before = campaign.ruleset
        definitions = campaign_definitions(campaign)
        parsed = parse_ruleset_for(campaign, ruleset, definitions)
        reason = f"re-scored {before.code} v{before.version} → {ruleset.code} v{ruleset.version} by {actor}"[:100]
        if campaign.ruleset_id != ruleset.pk:
            campaign.ruleset = ruleset
            campaign._change_reason = reason
            campaign._history_user = actor
            campaign.save(update_fields=["ruleset"])
        report = RescoreReport(campaign.pk, str(before), str(ruleset), dry_run=dry_run)
        changed, rose = _rescore(campaign, definitions, parsed, report)
        if dry_run:
            transaction.set_rollback(True)
        else:
            results_bulk_write(
                campaign=campaign, new=[], changed=changed, values={"ruleset_id": ruleset.pk}, actor=actor,
                reason=reason, now=timezone.now(),
            )  # fmt: skip
            results_flagged_on_commit(rose)
    logger.info(
        "campaign %s re-scored%s by user %s: rule set %s → %s; %d results, %d changed, %d rose; tiers before %s, "
        "after %s",
        campaign.pk, " (dry run)" if dry_run else "", actor.pk, report.ruleset_before, report.ruleset_after,
        report.total, report.changed, report.rose, report.tiers_before, report.tiers_after,
    )  # fmt: skip
    return report


def _rescore(campaign, definitions, parsed, report: RescoreReport) -> tuple[list[tuple[int, ScoredRow]], list[int]]:
    scorers = {
        code: ScoreCache(instrument, _stored_answers, from_import=False)
        for code, instrument in definitions.instruments.items()
    }
    before, after = Counter(), Counter()
    changed: list[tuple[int, ScoredRow]] = []
    rose: list[int] = []
    unscorable = 0
    stored = ScreeningResult.objects.filter(campaign=campaign).order_by("pk")
    columns = ("pk", "student_id", "answers", "scores", "tier", "fired_rules")
    for pk, student_id, answers, scores, tier, fired_rules in stored.values_list(*columns).iterator(BATCH_SIZE):
        try:
            new_scores = {
                code: scorer.score(tuple(sorted(answers.get(code, {}).items()))) for code, scorer in scorers.items()
            }
        except AnswerError:
            unscorable += 1
            continue
        fields = result_fields(campaign, new_scores, tier_for(parsed, new_scores))
        before[tier] += 1
        after[fields["tier"]] += 1
        if (fields["scores"], fields["tier"], fields["fired_rules"]) == (scores, tier, fired_rules):
            continue
        changed.append((pk, scored_row(student_id, fields)))
        if RiskTier(fields["tier"]).rank > RiskTier(tier).rank:
            rose.append(pk)
    if unscorable:
        raise RescoreRefused(
            ngettext(
                "%(count)d stored result of this campaign cannot be scored again; nothing was changed.",
                "%(count)d stored results of this campaign cannot be scored again; nothing was changed.",
                unscorable,
            )
            % {"count": unscorable}
        )
    report.total = sum(before.values())
    report.changed, report.rose = len(changed), len(rose)
    report.tiers_before = {t: before[t] for t in RiskTier.values}
    report.tiers_after = {t: after[t] for t in RiskTier.values}
    return changed, rose
