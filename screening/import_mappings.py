"""How results files from other screening platforms are read: one YAML mapping per platform in `screening/platforms/`.

A mapping names the columns the platform writes (school, student number, name, class, its own warning level), how
its item columns are named (per instrument, `PHQ9_1`, or numbered through the questionnaire, `题1 … 题21`) and, where
it writes answers as codes (A-D), what each code means. Our own template is one of them (`ours.yaml`), so a district
adjusts any of them without code. Answers are matched here too: an option's label, key, or value where that value
names exactly one option; anything that could mean two options is refused, never guessed.

Pure apart from reading the YAML files: used by `screening.results_import` and the results admin. Imports nothing
from other apps but `roster.normalize` (the bottom layer).
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from roster.normalize import normalize_header
from roster.uploads import FileRefused
from screening.definitions import DefinitionError, Instrument, Item, in_language, load_yaml, text_language
from screening.scoring import AnswerError

PLATFORMS_DIR = Path(__file__).resolve().parent / "platforms"
AUTO = "auto"  # the form's choice "detect from the headers"
OURS = "ours"
IDENTITY_FIELDS = ("school_code", "school_name", "student_no", "name", "class", "level")
NUMBERINGS = ("per_instrument", "sequential")
# Words people type for the ASQ's answers, beside the options' own labels; each applies only where the item has it.
ANSWER_WORDS = {"是": "yes", "否": "no", "y": "yes", "n": "no", "拒答": "declined", "不想回答": "declined"}
_WHOLE_DECIMAL = re.compile(r"^(-?\d+)\.0+$")  # "1.0" as a CSV writes Excel's numbers
_NUMBER = re.compile(r"^-?\d+$")


class AnswerCellError(AnswerError):
    """One cell that names no answer, or more than one; carries the column and the cell for the row report."""

    def __init__(self, message: str, column: str, value: str):
        super().__init__(message)
        self.column, self.value = column, value


@dataclass(frozen=True)
class PlatformMapping:
    code: str
    name: dict[str, str]
    about: dict[str, str]
    columns: dict[str, tuple[str, ...]]  # identity field → header names, first is shown in messages
    numbering: str
    item_columns: tuple[str, ...]  # patterns with {n} and, per instrument, {instrument}
    instrument_names: dict[str, tuple[str, ...]] = field(default_factory=dict)
    answer_codes: dict[str, dict[str, str]] = field(default_factory=dict)  # instrument → {code: option key}

    @property
    def label(self) -> str:
        return in_language(self.name)

    @property
    def description(self) -> str:
        return in_language(self.about)

    def header(self, field_name: str) -> str:
        return self.columns[field_name][0]

    def item_column_names(self, instruments: dict[str, Instrument]) -> dict[tuple[str, int], list[str]]:
        """(instrument code, item number) → the header names this platform gives that item, preferred first."""
        names: dict[tuple[str, int], list[str]] = {}
        running = 0
        for code, instrument in instruments.items():
            for item in instrument.items:
                running += 1
                number = running if self.numbering == "sequential" else item.number
                names[(code, item.number)] = [
                    pattern.format(instrument=alias, n=number)
                    for pattern in self.item_columns
                    for alias in (self.instrument_names.get(code) or (code,))
                ]
        return names


def parse_mapping(data: dict, where: str) -> PlatformMapping:
    """A mapping from its YAML; every mistake names the file and the place (DefinitionError)."""

    def need(container, key, kind, place):
        if not isinstance(container, dict) or not isinstance(container.get(key), kind):
            raise DefinitionError(f"{place}: “{key}” is missing or not a {kind.__name__}")
        return container[key]

    def texts(value, place) -> dict[str, str]:
        if not isinstance(value, dict) or not value.get("zh-hans") or not value.get("en"):
            raise DefinitionError(f"{place}: needs both a “zh-hans” and an “en” text")
        return {str(k): str(v) for k, v in value.items()}

    code = str(need(data, "code", str, where))
    columns_raw = need(data, "columns", dict, where)
    unknown = set(columns_raw) - set(IDENTITY_FIELDS)
    if unknown:
        raise DefinitionError(f"{where}.columns: unknown fields {sorted(unknown)} (use {', '.join(IDENTITY_FIELDS)})")
    columns = {}
    for name, headers in columns_raw.items():
        if not isinstance(headers, list) or not headers or not all(isinstance(h, str) and h for h in headers):
            raise DefinitionError(f"{where}.columns.{name}: a non-empty list of header names")
        columns[name] = tuple(headers)
    if "student_no" not in columns:
        raise DefinitionError(f"{where}.columns: “student_no” is needed to find the students")
    items = need(data, "items", dict, where)
    numbering = str(items.get("numbering", "per_instrument"))
    if numbering not in NUMBERINGS:
        raise DefinitionError(f"{where}.items.numbering: one of {', '.join(NUMBERINGS)}")
    patterns = need(items, "columns", list, f"{where}.items")
    if not patterns or not all(isinstance(p, str) and "{n}" in p for p in patterns):
        raise DefinitionError(f"{where}.items.columns: header patterns, each with {{n}}")
    if numbering == "sequential" and any("{instrument}" in p for p in patterns):
        raise DefinitionError(f"{where}.items.columns: sequential numbers need no {{instrument}}")
    aliases = items.get("instrument_names") or {}
    answers = data.get("answers") or {}
    if not isinstance(aliases, dict) or not isinstance(answers, dict):
        raise DefinitionError(f"{where}: instrument_names and answers map instrument codes")
    codes = {}
    for instrument, table in answers.items():
        if not isinstance(table, dict) or not table:
            raise DefinitionError(f"{where}.answers.{instrument}: a map of code → option key")
        normalised = {answer_text(k): str(v) for k, v in table.items()}
        if len(normalised) != len(table) or "" in normalised:
            raise DefinitionError(f"{where}.answers.{instrument}: codes must be distinct and not blank")
        codes[str(instrument)] = normalised
    return PlatformMapping(
        code=code,
        name=texts(need(data, "name", dict, where), f"{where}.name"),
        about=texts(need(data, "about", dict, where), f"{where}.about"),
        columns=columns,
        numbering=numbering,
        item_columns=tuple(patterns),
        instrument_names={str(k): tuple(str(a) for a in v) for k, v in aliases.items()},
        answer_codes=codes,
    )


def platforms() -> dict[str, PlatformMapping]:
    """Every mapping, ours first. Read on each call (three small files), so an edited mapping applies at once."""
    found = {}
    for path in sorted(PLATFORMS_DIR.glob("*.yaml"), key=lambda p: (p.stem != OURS, p.stem)):
        mapping = parse_mapping(load_yaml(path), path.name)
        found[mapping.code] = mapping
    return found


def platform_choices() -> list[tuple[str, str]]:
    return [(AUTO, gettext_lazy("Detect from the column headers"))] + [(m.code, m.label) for m in platforms().values()]


def detect_platform(header: list, instruments: dict[str, Instrument]) -> PlatformMapping:
    """The mapping whose item column names match the most headers of this file, ours on a tie or when none match (so
    that a file with no item columns hears which of ours are missing); refuses (FileRefused) a tie of two others."""
    present = {normalize_header(h) for h in header if h is not None}
    mappings = platforms()
    counts = {}
    for code, mapping in mappings.items():
        columns = mapping.item_column_names(instruments).values()
        counts[code] = sum(any(normalize_header(n) in present for n in names) for names in columns)
    best = max(counts.values(), default=0)
    top = [code for code, count in counts.items() if count == best]
    if OURS in mappings and (best == 0 or OURS in top):
        return mappings[OURS]
    if len(top) != 1:
        raise FileRefused(
            _(
                "Could not tell from the column headers which platform this file comes from: choose it under "
                "“Source platform”. Nothing was imported."
            )
        )
    return mappings[top[0]]


# --- Answers ----------------------------------------------------------------------------------------------------


def answer_text(raw) -> str:
    """A cell reduced for matching answers: "１", 1.0, "1.0" and " 1 " all read "1"; "Yes" reads "yes"."""
    if raw is None:
        return ""
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    text = " ".join(unicodedata.normalize("NFKC", str(raw)).split()).lower()
    whole = _WHOLE_DECIMAL.match(text)
    return whole[1] if whole else text


@dataclass(frozen=True)
class _Ambiguous:
    keys: tuple[str, ...]


class AnswerReader:
    """Reads one instrument's answer cells into option keys, for one platform.

    Accepted: each option's labels (both languages), the answer words (是/否 …), and either the platform's answer
    codes for this instrument, or, without codes, the options' keys and their values where a value names one option.
    Options sharing a value (the ASQ's "declined" scores as "yes") leave the value to the plain answer: an import
    expresses the instrument's `blank_counts_as` answer by a blank cell. A text that names two options is refused.
    """

    def __init__(self, instrument: Instrument, mapping: PlatformMapping, columns: dict[int, str]):
        self.instrument, self.columns = instrument, columns
        codes = mapping.answer_codes.get(instrument.code)
        for item in instrument.items:
            for code, key in (codes or {}).items():
                if item.option(key) is None:
                    raise DefinitionError(
                        _(
                            "The mapping “%(platform)s” reads answer code “%(code)s” of %(instrument)s as “%(key)s”, "
                            "which is not one of its answers: correct screening/platforms/%(platform)s.yaml. "
                            "Nothing was imported."
                        )
                        % {"platform": mapping.code, "code": code.upper(), "instrument": instrument.code, "key": key}
                    )
        built: dict[int, tuple[dict, str]] = {}  # by the options' identity: items sharing the instrument's list
        self.tables: dict[int, tuple[dict, str]] = {}
        for item in instrument.items:
            if id(item.options) not in built:
                built[id(item.options)] = self._table(item, codes, instrument.blank_counts_as)
            self.tables[item.number] = built[id(item.options)]

    @staticmethod
    def _table(item: Item, codes: dict[str, str] | None, blank_key: str | None) -> tuple[dict, str]:
        meanings: dict[str, set[str]] = defaultdict(set)
        shown_codes: dict[str, list[str]] = defaultdict(list)
        for option in item.options:
            for label in option.label.values():
                meanings[answer_text(label)].add(option.key)
        for word, key in ANSWER_WORDS.items():
            if item.option(key) is not None:
                meanings[word].add(key)
        if codes is not None:
            for option in item.options:
                if not _NUMBER.match(option.key):  # a bare number is never read where the platform has codes
                    meanings[answer_text(option.key)].add(option.key)
            for code, key in codes.items():
                meanings[code].add(key)
                shown_codes[key].append(code.upper())
        else:
            by_value: dict[int, list] = defaultdict(list)
            for option in item.options:
                meanings[answer_text(option.key)].add(option.key)
                by_value[option.value].append(option)
            for value, options in by_value.items():
                plain = [o for o in options if o.key != blank_key] or options
                meanings[str(value)].update(o.key for o in plain)
                if len(plain) == 1:
                    shown_codes[plain[0].key].append(str(value))
        table = {
            text: next(iter(keys)) if len(keys) == 1 else _Ambiguous(tuple(sorted(keys)))
            for text, keys in meanings.items()
        }
        # Labels in the language of the person importing, each with the codes that name it: "是 (1)、否 (0)、…".
        accepted = (", " if text_language() == "en" else "、").join(
            in_language(o.label) + (f" ({'/'.join(shown_codes[o.key])})" if shown_codes[o.key] else "")
            for o in item.options
        )
        return table, accepted

    def read(self, numbers: list[int], cells: tuple) -> dict[int, str]:
        """Item number → option key ("" for a blank cell, which scoring treats as the instrument says)."""
        answers = {}
        for number, cell in zip(numbers, cells, strict=True):
            text = answer_text(cell)
            if not text:
                answers[number] = ""
                continue
            table, accepted = self.tables[number]
            key = table.get(text)
            if isinstance(key, str):
                answers[number] = key
                continue
            item = self.instrument.item(number)
            shown = "" if cell is None else str(cell).strip()
            if key is None:
                message = _("“%(value)s” is not one of its answers: use %(answers)s.") % {
                    "value": shown,
                    "answers": accepted,
                }
            else:
                message = _(
                    "“%(value)s” is ambiguous: it could mean %(meanings)s. Write the answer's label instead, or "
                    "choose the platform the file comes from."
                ) % {"value": shown, "meanings": " / ".join(f"“{in_language(item.option(k).label)}”" for k in key.keys)}
            raise AnswerCellError(message, self.columns.get(number, ""), shown)
        return answers
