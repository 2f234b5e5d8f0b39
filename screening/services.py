"""Writes of the screening app: loading instrument and rule-set definitions."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from django.db import transaction

from screening.definitions import (
    INSTRUMENTS_DIR,
    RULESETS_DIR,
    DefinitionError,
    load_yaml,
    parse_instrument,
    parse_ruleset,
)
from screening.models import Instrument, RuleSet


@dataclass
class LoadReport:
    created: list[str]
    unchanged: list[str]


def _store(model, key: dict, definition: dict, fields: dict, report: LoadReport, label: str) -> None:
    existing = model.objects.filter(**key).first()
    if existing is None:
        model.objects.create(**key, definition=definition, **fields)
        report.created.append(label)
    elif existing.definition == definition:
        report.unchanged.append(label)
    else:
        raise DefinitionError(
            f"{label} is already stored with different content: give the changed definition a new version number"
        )


@transaction.atomic
def definitions_load(
    *, instrument_files: list[Path] | None = None, ruleset_files: list[Path] | None = None
) -> LoadReport:
    """Store instruments and rule sets from YAML files (default: the shipped ones). Idempotent.

    Access: administrators (command line, or the admin for city roles). Audit: a history row per new definition.
    A file whose (code, version) is stored with other content is refused, nothing written: versions are immutable.
    """
    report = LoadReport(created=[], unchanged=[])
    instruments = {}
    for path in instrument_files if instrument_files is not None else sorted(INSTRUMENTS_DIR.glob("*.yaml")):
        data = load_yaml(path)
        instrument = parse_instrument(data)
        instruments[instrument.code] = instrument
        fields = {"name": instrument.name["zh-hans"], "source": instrument.source, "licence": instrument.licence}
        _store(
            Instrument,
            {"code": instrument.code, "version": instrument.version},
            data,
            fields,
            report,
            str(instrument.code) + f" v{instrument.version}",
        )
    for stored in Instrument.objects.exclude(code__in=instruments):
        instruments.setdefault(stored.code, stored.parsed())
    for path in ruleset_files if ruleset_files is not None else sorted(RULESETS_DIR.glob("*.yaml")):
        data = load_yaml(path)
        ruleset = parse_ruleset(data, instruments)
        _store(
            RuleSet, {"code": ruleset.code, "version": ruleset.version}, data, {"population": ruleset.population},
            report, f"{ruleset.code} v{ruleset.version}",
        )  # fmt: skip
    return report
