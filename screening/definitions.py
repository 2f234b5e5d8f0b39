"""Instrument and tiering-rule definitions: parsed from YAML (or the JSON stored in the database) and validated.

Pure: no ORM. A district can add its own scale by writing a file in this format; every mistake is reported with the
place it was found, before anything is stored. Shipped files live in `screening/instruments/` and
`screening/rulesets/`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml
from django.db import models
from django.utils import translation
from django.utils.translation import gettext_lazy as _

INSTRUMENTS_DIR = Path(__file__).resolve().parent / "instruments"
RULESETS_DIR = Path(__file__).resolve().parent / "rulesets"
# Who answers an instrument (`rater:` in its file): the student themself (default; the portal), or an observer — a
# homeroom teacher rating a student of the class from what they have seen (a teacher checklist, 排查表: seed 003).
SELF = "self"
OBSERVER = "observer"
RATERS = (SELF, OBSERVER)


class RiskTier(models.TextChoices):
    """Seed 001's colour archive (三色档案) plus seed 002's crisis level. Ordered: later is more urgent."""

    GREEN = "green", _("Green")
    YELLOW = "yellow", _("Yellow")
    ORANGE = "orange", _("Orange")
    RED = "red", _("Red")

    @property
    def rank(self) -> int:
        return list(RiskTier).index(self)


class DefinitionError(ValueError):
    """A definition file that cannot be used; the message says where and why."""


@dataclass(frozen=True)
class Option:
    key: str
    value: int
    label: dict[str, str]


@dataclass(frozen=True)
class Item:
    number: int
    text: dict[str, str]
    options: tuple[Option, ...]
    reverse: bool = False
    critical: bool = False
    acuity: bool = False
    ask_if_any_of: tuple[int, ...] = ()

    @property
    def min_value(self) -> int:
        return min(o.value for o in self.options)

    @property
    def max_value(self) -> int:
        return max(o.value for o in self.options)

    def option(self, key: str) -> Option | None:
        return next((o for o in self.options if o.key == key), None)


@dataclass(frozen=True)
class Band:
    min: int
    max: int
    key: str
    label: dict[str, str]


@dataclass(frozen=True)
class Scale:
    code: str
    items: tuple[int, ...]
    bands: tuple[Band, ...]


@dataclass(frozen=True)
class Instrument:
    code: str
    version: int
    name: dict[str, str]
    source: str
    licence: str
    instructions: dict[str, str]
    items: tuple[Item, ...]
    scales: tuple[Scale, ...]
    blank_counts_as: str | None = None
    rater: str = SELF
    raw: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def observer_rated(self) -> bool:
        return self.rater == OBSERVER

    def item(self, number: int) -> Item:
        return next(i for i in self.items if i.number == number)


@dataclass(frozen=True)
class Condition:
    instrument: str
    item: int | None = None
    any_item: tuple[int, ...] = ()
    scale: str | None = None
    at_least: int | None = None
    between: tuple[int, int] | None = None

    def matches(self, value: int) -> bool:
        if self.between is not None:
            return self.between[0] <= value <= self.between[1]
        return value >= self.at_least


@dataclass(frozen=True)
class Rule:
    id: str
    tier: RiskTier
    when: Condition
    reason: dict[str, str]


@dataclass(frozen=True)
class RuleSet:
    code: str
    version: int
    population: str
    rules: tuple[Rule, ...]
    raw: dict = field(default_factory=dict, compare=False, repr=False)


# --- Parsing --------------------------------------------------------------------------------------------------


def _need(data: dict, key: str, where: str, kind=None):
    if not isinstance(data, dict) or key not in data:
        raise DefinitionError(f"{where}: “{key}” is missing")
    value = data[key]
    if kind is not None and not isinstance(value, kind):
        raise DefinitionError(f"{where}.{key}: expected {getattr(kind, '__name__', kind)}, got {value!r}")
    return value


def text_language() -> str:
    """The definition-text key for the active UI language: definitions carry "zh-hans" and "en"."""
    return "en" if (translation.get_language() or "").startswith("en") else "zh-hans"


def in_language(texts: dict[str, str]) -> str:
    """A definition text in the active UI language. Picked by key, never by position: PostgreSQL's jsonb stores keys
    shortest first, so "en" comes before "zh-hans" in anything read back from the database."""
    return texts.get(text_language()) or texts.get("zh-hans") or next(iter(texts.values()), "")


def _texts(value, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or not value.get("zh-hans") or not value.get("en"):
        raise DefinitionError(f"{where}: needs both a “zh-hans” and an “en” text")
    return {str(k): str(v) for k, v in value.items()}


def _options(raw, where: str) -> tuple[Option, ...]:
    if not isinstance(raw, list) or not raw:
        raise DefinitionError(f"{where}: needs a non-empty list of options")
    options = tuple(
        Option(
            key=str(_need(o, "key", f"{where}[{n}]")),
            value=_need(o, "value", f"{where}[{n}]", int),
            label=_texts(_need(o, "label", f"{where}[{n}]"), f"{where}[{n}].label"),
        )
        for n, o in enumerate(raw)
    )
    if len({o.key for o in options}) != len(options):
        raise DefinitionError(f"{where}: option keys must be unique")
    return options


def parse_instrument(data: dict) -> Instrument:
    code = str(_need(data, "code", "instrument"))
    where = f"instrument {code}"
    shared = _options(data["options"], f"{where}.options") if "options" in data else None
    items = []
    for n, raw in enumerate(_need(data, "items", where, list)):
        place = f"{where}.items[{n}]"
        number = _need(raw, "number", place, int)
        options = _options(raw["options"], f"{place}.options") if "options" in raw else shared
        if options is None:
            raise DefinitionError(f"{place}: no options (give the item or the instrument an options list)")
        items.append(
            Item(
                number=number,
                text=_texts(_need(raw, "text", place), f"{place}.text"),
                options=options,
                reverse=bool(raw.get("reverse", False)),
                critical=bool(raw.get("critical", False)),
                acuity=bool(raw.get("acuity", False)),
                ask_if_any_of=tuple(raw.get("ask_if_any_of", ())),
            )
        )
    numbers = [i.number for i in items]
    if len(set(numbers)) != len(numbers):
        raise DefinitionError(f"{where}: item numbers must be unique")
    for item in items:
        if set(item.ask_if_any_of) - set(numbers) or item.number in item.ask_if_any_of:
            raise DefinitionError(f"{where}: item {item.number} asks after items that do not exist")
    scales = []
    for n, raw in enumerate(_need(data, "scales", where, list)):
        place = f"{where}.scales[{n}]"
        scale_items = tuple(_need(raw, "items", place, list))
        if set(scale_items) - set(numbers):
            raise DefinitionError(f"{place}: names items that do not exist")
        bands = tuple(
            Band(
                min=_need(b, "min", f"{place}.bands[{k}]", int),
                max=_need(b, "max", f"{place}.bands[{k}]", int),
                key=str(_need(b, "key", f"{place}.bands[{k}]")),
                label=_texts(_need(b, "label", f"{place}.bands[{k}]"), f"{place}.bands[{k}].label"),
            )
            for k, b in enumerate(_need(raw, "bands", place, list))
        )
        by_number = {i.number: i for i in items}
        low = sum(by_number[i].min_value for i in scale_items)
        high = sum(by_number[i].max_value for i in scale_items)
        expected = low
        for band in sorted(bands, key=lambda b: b.min):
            if band.min != expected or band.max < band.min:
                raise DefinitionError(f"{place}: bands must cover {low}-{high} without gaps or overlaps")
            expected = band.max + 1
        if expected != high + 1:
            raise DefinitionError(f"{place}: bands must cover {low}-{high} without gaps or overlaps")
        scales.append(Scale(code=str(_need(raw, "code", place)), items=scale_items, bands=bands))
    blank = data.get("blank_counts_as")
    if blank is not None and any(item.option(str(blank)) is None for item in items if not item.ask_if_any_of):
        raise DefinitionError(f"{where}: blank_counts_as “{blank}” is not an option of every item")
    rater = str(data.get("rater", SELF))
    if rater not in RATERS:
        raise DefinitionError(f"{where}.rater: one of {', '.join(RATERS)}, got {rater!r}")
    return Instrument(
        code=code,
        version=_need(data, "version", where, int),
        name=_texts(_need(data, "name", where), f"{where}.name"),
        source=str(_need(data, "source", where)),
        licence=str(_need(data, "licence", where)),
        instructions=_texts(_need(data, "instructions", where), f"{where}.instructions"),
        items=tuple(items),
        scales=tuple(scales),
        blank_counts_as=str(blank) if blank is not None else None,
        rater=rater,
        raw=data,
    )


def parse_ruleset(
    data: dict, instruments: dict[str, Instrument] | None = None, *, allow_absent: bool = False
) -> RuleSet:
    """Rules; with `instruments`, every item and scale a rule names must exist.

    With `allow_absent` (a campaign that asks only some instruments), rules about an instrument not given are kept
    unchecked: they never fire, because the campaign has no score for them.
    """
    code = str(_need(data, "code", "ruleset"))
    rules = []
    for n, raw in enumerate(_need(data, "rules", f"ruleset {code}", list)):
        place = f"ruleset {code}.rules[{n}]"
        when = _need(raw, "when", place, dict)
        condition = Condition(
            instrument=str(_need(when, "instrument", f"{place}.when")),
            item=when.get("item"),
            any_item=tuple(when.get("any_item", ())),
            scale=when.get("scale"),
            at_least=when.get("at_least"),
            between=tuple(when["between"]) if "between" in when else None,
        )
        targets = sum(x is not None and x != () for x in (condition.item, condition.any_item, condition.scale))
        comparisons = sum(x is not None for x in (condition.at_least, condition.between))
        if targets != 1 or comparisons != 1:
            raise DefinitionError(f"{place}.when: name one of item / any_item / scale, and one of at_least / between")
        try:
            tier = RiskTier(_need(raw, "tier", place))
        except ValueError:
            raise DefinitionError(f"{place}.tier: one of {', '.join(RiskTier.values)}") from None
        instrument = instruments.get(condition.instrument) if instruments is not None else None
        if instruments is not None and instrument is None and not allow_absent:
            raise DefinitionError(f"{place}: unknown instrument {condition.instrument}")
        if instrument is not None:
            numbers = {i.number for i in instrument.items}
            named = {condition.item} if condition.item is not None else set(condition.any_item)
            if condition.scale is None and named - numbers:
                raise DefinitionError(f"{place}: {condition.instrument} has no item {sorted(named - numbers)}")
            if condition.scale is not None and condition.scale not in {s.code for s in instrument.scales}:
                raise DefinitionError(f"{place}: {condition.instrument} has no scale {condition.scale}")
        rules.append(
            Rule(
                id=str(_need(raw, "id", place)),
                tier=tier,
                when=condition,
                reason=_texts(_need(raw, "reason", place), f"{place}.reason"),
            )
        )
    if len({r.id for r in rules}) != len(rules):
        raise DefinitionError(f"ruleset {code}: rule ids must be unique")
    return RuleSet(
        code=code,
        version=_need(data, "version", f"ruleset {code}", int),
        population=str(data.get("population", "")),
        rules=tuple(rules),
        raw=data,
    )


def load_yaml(path: Path) -> dict:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise DefinitionError(f"{path.name}: not valid YAML ({error})") from None


def shipped_instruments() -> dict[str, Instrument]:
    return {i.code: i for i in (parse_instrument(load_yaml(p)) for p in sorted(INSTRUMENTS_DIR.glob("*.yaml")))}


def shipped_ruleset(code: str = "adolescent-default") -> RuleSet:
    return parse_ruleset(load_yaml(RULESETS_DIR / f"{code}.yaml"), shipped_instruments())
