"""Instruments and rule sets are stored as immutable versions, loaded from the shipped files or added in the admin."""

import io
from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import translation

from screening.definitions import INSTRUMENTS_DIR, RULESETS_DIR, in_language
from screening.models import Instrument, RuleSet


def _load(**kwargs):
    out = io.StringIO()
    call_command("load_instruments", stdout=out, **kwargs)
    return out.getvalue()


def test_the_shipped_definitions_load_once(db):
    first = _load()
    assert "added PHQ9 v1" in first and "added adolescent-default v1" in first
    assert set(Instrument.objects.values_list("code", flat=True)) == {"PHQ9", "GAD7", "ASQ", "TCHK"}
    assert RuleSet.objects.get(code="adolescent-default").history.count() == 1
    second = _load()
    assert "added" not in second and "already stored" in second
    assert Instrument.objects.count() == 4


@pytest.mark.parametrize("language, expected", [("zh-hans", "中度"), ("en", "Moderate")])
def test_stored_texts_are_read_in_the_ui_language_whatever_the_key_order(db, language, expected):
    """PostgreSQL's jsonb gives keys back shortest first ("en" before "zh-hans"); the text is chosen by key."""
    _load()
    phq9 = Instrument.objects.get(code="PHQ9").parsed()
    moderate = next(band for band in phq9.scales[0].bands if band.key == "moderate")
    with translation.override(language):
        assert in_language(moderate.label) == expected
        assert in_language({"en": "Moderate", "zh-hans": "中度"}) == expected


def test_a_changed_file_with_the_same_version_is_refused_and_nothing_written(db, tmp_path):
    _load()
    data = yaml.safe_load((INSTRUMENTS_DIR / "gad7.yaml").read_text(encoding="utf-8"))
    data["scales"][0]["bands"][2]["min"] = 9
    data["scales"][0]["bands"][1]["max"] = 8
    changed = tmp_path / "gad7.yaml"
    changed.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(CommandError, match="new version"):
        _load(instrument=[changed], ruleset=[])
    assert Instrument.objects.get(code="GAD7").definition["scales"][0]["bands"][2]["min"] == 10
    data["version"] = 2
    changed.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    assert "added GAD7 v2" in _load(instrument=[changed], ruleset=[])


def _new_version_yaml(path: Path, version: int) -> str:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["version"] = version
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


@pytest.mark.parametrize(("persona", "status"), [("city_admin", 302), ("city_centre", 302), ("admin_district_a", 403)])
def test_city_roles_add_new_versions_in_the_admin(client, world, persona, status):
    _load()
    client.force_login(getattr(world, persona))
    response = client.post(
        reverse("admin:screening_ruleset_add"), {"text": _new_version_yaml(RULESETS_DIR / "adolescent-default.yaml", 2)}
    )
    assert response.status_code == status
    assert RuleSet.objects.filter(version=2).exists() == (status == 302)


def test_an_existing_version_cannot_be_added_again_or_edited(client, world):
    _load()
    client.force_login(world.city_admin)
    response = client.post(
        reverse("admin:screening_instrument_add"), {"text": _new_version_yaml(INSTRUMENTS_DIR / "asq.yaml", 1)}
    )
    assert response.status_code == 200 and response.context["adminform"].form.errors["text"]
    assert Instrument.objects.filter(code="ASQ").count() == 1
    asq = Instrument.objects.get(code="ASQ")
    change = client.post(reverse("admin:screening_instrument_change", args=[asq.pk]), {"text": "x"})
    assert change.status_code == 403


def test_auditors_can_read_definitions(client, world):
    _load()
    client.force_login(world.auditor_district_a)
    phq = Instrument.objects.get(code="PHQ9")
    page = client.get(reverse("admin:screening_instrument_change", args=[phq.pk]))
    assert page.status_code == 200 and "做事时提不起劲或没有兴趣" in page.content.decode()
