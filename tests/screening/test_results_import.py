"""Results from other platforms: scored like the portal, reported row by row, stored once."""

import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.utils import translation

from screening.definitions import RiskTier
from screening.models import ScreeningResult
from screening.results_import import ResultsImport, canonical_json, import_results
from screening.signals import student_flagged
from tests.factories.screening import CampaignFactory
from tests.roster_files import csv_bytes, xlsx_bytes

HEADER = (
    ["学校代码", "学号"]
    + [f"PHQ9_{n}" for n in range(1, 10)]
    + [f"GAD7_{n}" for n in range(1, 8)]
    + [f"ASQ_{n}" for n in range(1, 6)]
)


def row(student, phq=0, gad=0, asq=("否", "否", "否", "否", "")):
    return [student.school.code, student.student_no] + [phq] * 9 + [gad] * 7 + list(asq)


@pytest.fixture
def campaign(world):
    return CampaignFactory(schools=[world.school_a1])


def _run(campaign, data, actor=None, filename="results.csv", **kwargs):
    return import_results(ResultsImport(campaign=campaign, data=data, filename=filename, actor=actor, **kwargs))


def test_a_results_file_is_scored_and_stored(campaign, world, django_capture_on_commit_callbacks):
    flagged = []
    student_flagged.connect(receiver := (lambda sender, result, **kw: flagged.append(result.student_id)))
    data = xlsx_bytes(
        [
            HEADER,
            row(world.student_a1_3, asq=("是", "否", "否", "否", "是")),  # acuity yes → red
            row(world.student_a1_5, phq=1, asq=("", "否", "否", "否", "否")),  # blank ASQ_1 = declined → orange
        ]
    )
    with django_capture_on_commit_callbacks(execute=True):
        report = _run(campaign, data, filename="results.xlsx", dry_run=False)
    student_flagged.disconnect(receiver)
    assert (report.errors, report.new, report.written) == ([], 2, True)
    tiers = dict(ScreeningResult.objects.values_list("student_id", "tier"))
    assert tiers == {world.student_a1_3.pk: RiskTier.RED, world.student_a1_5.pk: RiskTier.ORANGE}
    assert sorted(flagged) == sorted([world.student_a1_3.pk, world.student_a1_5.pk])


def test_the_same_file_again_changes_nothing(campaign, world):
    data = csv_bytes([HEADER, row(world.student_a1_3), row(world.student_a1_5, gad=2)])
    _run(campaign, data, dry_run=False)
    history = ScreeningResult.history.count()
    again = _run(campaign, data, dry_run=False)
    assert (again.new, again.updated, again.unchanged) == (0, 0, 2)
    assert ScreeningResult.history.count() == history


def test_bad_rows_are_reported_and_nothing_is_stored(campaign, world):
    data = csv_bytes(
        [
            HEADER,
            row(world.student_a1_3),
            row(world.student_b1),  # not in this campaign's schools
            row(world.student_a1_5, phq=7),  # not an answer
            row(world.student_a1_3),  # duplicate
        ]
    )
    report = _run(campaign, data, dry_run=False)
    assert {e.line for e in report.errors} == {3, 4, 5}
    assert not report.written and not ScreeningResult.objects.exists()
    assert _run(campaign, data, dry_run=False, skip_invalid=True).new == 1


def test_missing_item_columns_refuse_the_file(campaign, world):
    report = _run(campaign, csv_bytes([HEADER[:-3], row(world.student_a1_3)[:-3]]), dry_run=False)
    assert "ASQ_3" in report.refused and "ASQ_4" in report.refused


@pytest.mark.parametrize(
    ("persona", "imported", "outcome"),
    [
        ("counselor_a1", 1, ""),
        ("centre_district_a", 1, ""),
        ("counselor_a2", 0, "This student is outside your scope."),  # a sibling school's psychology teacher
        ("school_admin_a1", 0, "refused"),  # manages the roster, never reads results
        ("auditor_district_a", 0, "refused"),  # reads results, changes nothing
        ("homeroom_a1_3", 0, "refused"),
    ],
)
def test_only_psychology_and_centre_roles_of_that_scope_import_results(campaign, world, persona, imported, outcome):
    with translation.override("en"):
        report = _run(
            campaign, csv_bytes([HEADER, row(world.student_a1_3)]), actor=getattr(world, persona), dry_run=False
        )
    assert ScreeningResult.objects.count() == imported
    if outcome == "refused":
        assert report.refused.startswith("You may not import screening results")
    else:
        assert [e.message for e in report.errors] == ([outcome] if outcome else [])


def test_new_and_changed_results_get_one_history_row_each_with_the_importer(campaign, world):
    _run(campaign, csv_bytes([HEADER, row(world.student_a1_3), row(world.student_a1_5)]), actor=world.counselor_a1,
         dry_run=False)  # fmt: skip
    data = csv_bytes([HEADER, row(world.student_a1_3), row(world.student_a1_5, phq=2)])
    preview = _run(campaign, data, actor=world.counselor_a1)
    assert (preview.new, preview.updated, preview.unchanged, preview.written) == (0, 1, 1, False)
    assert ScreeningResult.history.count() == 2  # a check writes nothing

    report = _run(campaign, data, actor=world.counselor_a1, filename="second.csv", dry_run=False)
    assert (report.new, report.updated, report.unchanged, report.written) == (0, 1, 1, True)
    changed = ScreeningResult.objects.get(student=world.student_a1_5)
    assert changed.tier == RiskTier.RED and changed.answers["PHQ9"]["9"] == "2"
    history = list(changed.history.order_by("history_id"))
    assert [(h.history_type, h.tier) for h in history] == [("+", RiskTier.GREEN), ("~", RiskTier.RED)]
    assert history[1].history_user == world.counselor_a1
    assert history[1].history_change_reason == "results import: second.csv"
    assert history[1].answers == changed.answers and history[1].scores == changed.scores
    assert ScreeningResult.objects.get(student=world.student_a1_3).history.count() == 1


def test_unchanged_does_not_depend_on_the_key_order_the_database_returns(campaign, world):
    # PostgreSQL's jsonb reorders keys (shortest first); "unchanged" compares canonical text, so order is irrelevant.
    data = csv_bytes([HEADER, row(world.student_a1_3, phq=1, gad=3, asq=("是", "否", "是", "否", "否"))])
    _run(campaign, data, dry_run=False)
    stored = ScreeningResult.objects.get().answers
    reordered = {code: dict(reversed(items.items())) for code, items in reversed(stored.items())}
    assert json.dumps(reordered) != json.dumps(stored) and canonical_json(reordered) == canonical_json(stored)
    assert _run(campaign, data).unchanged == 1


def test_every_flagged_result_is_signalled_once_after_commit(campaign, world, django_capture_on_commit_callbacks):
    flagged = []
    student_flagged.connect(receiver := (lambda sender, result, **kw: flagged.append((result.pk, result.tier))))
    data = csv_bytes([HEADER, row(world.student_a1_3, phq=2), row(world.student_a1_5)])
    try:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            _run(campaign, data, dry_run=False)
        assert flagged == []  # nothing before commit
        for callback in callbacks:
            callback()
        again = _run(campaign, data, dry_run=False)  # unchanged: nothing to signal
    finally:
        student_flagged.disconnect(receiver)
    red = ScreeningResult.objects.get(student=world.student_a1_3)
    assert flagged == [(red.pk, RiskTier.RED)] and again.unchanged == 2


def test_the_command_refuses_a_file_with_errors(campaign, world, tmp_path):
    path = tmp_path / "results.csv"
    path.write_bytes(csv_bytes([HEADER, row(world.student_b1)]))
    err = io.StringIO()
    with pytest.raises(CommandError, match="Nothing imported"):
        call_command("import_results", str(path), "--campaign", str(campaign.pk), stderr=err, stdout=io.StringIO())
    assert "line 2" in err.getvalue()
