"""How a record's history reads on a page: the fields a history row changed, in the reader's language.

Booleans as 是/否, choices by their label, people and other linked records by name, dates formatted, empty as "—".
The linked records are named with one query per linked model, whatever the number of rows (collect, then render).
May import: roster, cases. Imported by workflows.selectors.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date, datetime

from django.contrib.auth import get_user_model
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

YES, NO, EMPTY = _("Yes"), _("No"), "—"

Change = tuple[models.Field, object, object]  # (field, old value, new value), values as stored (ids for links)


def diff(previous, row, model) -> list[Change]:
    """The fields a history row changed against the record's previous version (none for a creation or deletion)."""
    if previous is None or row.history_type != "~":
        return []
    found = []
    for field in model._meta.concrete_fields:
        old, new = getattr(previous, field.attname), getattr(row, field.attname)
        if old != new:
            found.append((field, old, new))
    return found


class ChangeRenderer:
    """Collects the changes of many rows, names their linked records in one query per model, renders them."""

    def __init__(self) -> None:
        self._ids: dict[type[models.Model], set] = defaultdict(set)
        self._names: dict[tuple[type[models.Model], object], str] = {}

    def collect(self, changes: list[Change]) -> list[Change]:
        for field, old, new in changes:
            if field.is_relation and field.related_model is not None:
                self._ids[field.related_model].update(v for v in (old, new) if v is not None)
        return changes

    def _resolve(self) -> None:
        user_model = get_user_model()
        for model, ids in self._ids.items():
            missing = [pk for pk in ids if (model, pk) not in self._names]
            if not missing:
                continue
            for obj in model._default_manager.filter(pk__in=missing):
                name = obj.get_short_name() if isinstance(obj, user_model) else str(obj)
                self._names[(model, obj.pk)] = name or getattr(obj, "username", "") or str(obj.pk)
        self._ids.clear()

    def value(self, field: models.Field, value) -> str:
        if value is None or value == "":
            return EMPTY
        if field.choices:
            return str(dict(field.flatchoices).get(value, value))
        if isinstance(field, models.BooleanField):
            return str(YES if value else NO)
        if field.is_relation and field.related_model is not None:
            self._resolve()
            return self._names.get((field.related_model, value), str(value))
        if isinstance(value, datetime):
            return timezone.localtime(value).strftime("%Y-%m-%d %H:%M") if timezone.is_aware(value) else (
                value.strftime("%Y-%m-%d %H:%M")
            )  # fmt: skip
        if isinstance(value, date):
            return value.strftime("%Y-%m-%d")
        if isinstance(value, (list, dict)):
            return json.dumps(value, ensure_ascii=False)
        return str(value)

    def render(self, changes: list[Change]) -> str:
        """ "field: old → new; …" in the active language."""
        return "; ".join(
            f"{field.verbose_name}: {self.value(field, old)} → {self.value(field, new)}" for field, old, new in changes
        )
