"""Scoring answers and tiering results: pure functions over `screening.definitions`, no ORM.

`score_instrument` turns one instrument's answers into item scores, scale totals and bands; `tier_for` applies a
rule set to the scores of every instrument a student answered and says which rules fired. A screening tier is a
screening result, not a diagnosis: the case's triage interview confirms or changes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from django.utils.translation import gettext as _

from screening.definitions import Instrument, RiskTier, RuleSet


class AnswerError(ValueError):
    """Answers that cannot be scored (unknown item or option, a required item missing)."""


@dataclass(frozen=True)
class InstrumentScore:
    instrument: str
    version: int
    answers: dict[int, str]  # as given (blank imports already replaced), only items that were asked
    items: dict[int, int]  # item number → scored value (reverse scoring applied)
    scales: dict[str, int]
    bands: dict[str, str]  # scale code → band key


@dataclass(frozen=True)
class FiredRule:
    id: str
    tier: RiskTier
    reason: dict[str, str]


@dataclass(frozen=True)
class TierResult:
    tier: RiskTier
    fired: tuple[FiredRule, ...]

    def reasons(self, language: str = "zh-hans") -> list[str]:
        return [rule.reason.get(language) or rule.reason["en"] for rule in self.fired]


def asked_items(instrument: Instrument, answers: Mapping[int, str]) -> list[int]:
    """Item numbers that are asked given the answers so far (conditional items need a 'yes' before them)."""
    asked = []
    for item in instrument.items:
        if not item.ask_if_any_of:
            asked.append(item.number)
            continue
        earlier = [instrument.item(n) for n in item.ask_if_any_of]
        if any(_value(i, answers.get(i.number)) > i.min_value for i in earlier if answers.get(i.number) is not None):
            asked.append(item.number)
    return asked


def _value(item, key: str | None) -> int:
    option = item.option(key) if key is not None else None
    if option is None:
        raise AnswerError(
            _("item %(number)d: “%(key)s” is not one of its answers") % {"number": item.number, "key": key}
        )
    return option.value


def score_instrument(
    instrument: Instrument, answers: Mapping[int, str | None], *, from_import: bool = False
) -> InstrumentScore:
    """Score one instrument. Every asked item needs an answer; with `from_import`, a blank takes the instrument's
    `blank_counts_as` answer (ASQ: a blank item 1-4 counts as declined, i.e. a yes)."""
    known = {item.number for item in instrument.items}
    unknown = set(answers) - known
    if unknown:
        raise AnswerError(f"{instrument.code}: no item {sorted(unknown)}")
    given: dict[int, str] = {}
    for item in instrument.items:
        key = answers.get(item.number)
        if (key is None or key == "") and from_import and instrument.blank_counts_as and not item.ask_if_any_of:
            key = instrument.blank_counts_as
        if key is not None and key != "":
            given[item.number] = str(key)
    asked = asked_items(instrument, given)
    missing = [n for n in asked if n not in given]
    if missing:
        raise AnswerError(
            _("%(instrument)s: items %(items)s were asked but are not answered")
            % {"instrument": instrument.code, "items": "、".join(map(str, missing))}
        )
    # An answer to an item that was not asked (e.g. ASQ acuity after four 'no') is dropped, never scored.
    given = {n: key for n, key in given.items() if n in asked}
    scored = {}
    for number, key in given.items():
        item = instrument.item(number)
        value = _value(item, key)
        scored[number] = item.max_value + item.min_value - value if item.reverse else value
    scales, bands = {}, {}
    for scale in instrument.scales:
        total = sum(scored.get(n, 0) for n in scale.items)
        scales[scale.code] = total
        bands[scale.code] = next(b.key for b in scale.bands if b.min <= total <= b.max)
    return InstrumentScore(instrument.code, instrument.version, given, scored, scales, bands)


def tier_for(ruleset: RuleSet, scores: Mapping[str, InstrumentScore]) -> TierResult:
    """The highest tier any rule gives (green when none fires), and every rule that fired, most urgent first."""
    fired = []
    for rule in ruleset.rules:
        score = scores.get(rule.when.instrument)
        if score is None:
            continue
        when = rule.when
        if when.scale is not None:
            values = [score.scales[when.scale]]
        else:
            values = [
                score.items[n] for n in ((when.item,) if when.item is not None else when.any_item) if n in score.items
            ]
        if any(when.matches(v) for v in values):
            fired.append(FiredRule(rule.id, rule.tier, rule.reason))
    fired.sort(key=lambda r: -r.tier.rank)
    tier = fired[0].tier if fired else RiskTier.GREEN
    return TierResult(tier, tuple(fired))
