"""Results exported by other platforms: codes for answers (ASQ 1/0, letters), their own column names and warning
levels, read without hand editing. The files are synthetic, built here in the layouts of `screening/platforms/`."""

import copy
import io
import re

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse
from django.utils import translation

from screening.definitions import RiskTier
from screening.import_mappings import PLATFORMS_DIR, platforms
from screening.models import Instrument, RuleSet, ScreeningResult
from screening.rescoring import campaign_rescore
from screening.results_import import ResultsImport, import_results
from tests.factories.screening import CampaignFactory
from tests.roster_files import csv_bytes, xlsx_bytes
from tests.screening.platform_files import ipp_file, xinshu_file

OURS_HEADER = (
    ["学校代码", "学号"]
    + [f"PHQ9_{n}" for n in range(1, 10)]
    + [f"GAD7_{n}" for n in range(1, 8)]
    + [f"ASQ_{n}" for n in range(1, 6)]
)


def _run(campaign, data, filename="results.xlsx", **kwargs):
    kwargs.setdefault("dry_run", False)
    return import_results(ResultsImport(campaign=campaign, data=data, filename=filename, **kwargs))


def _tiers():
    return dict(ScreeningResult.objects.values_list("student_id", "tier"))


@pytest.fixture
def campaign(world):
    return CampaignFactory(schools=[world.school_a1, world.school_a2])


# --- Answer codes in our own template --------------------------------------------------------------------------


@pytest.mark.parametrize("write", [xlsx_bytes, csv_bytes])
def test_asq_coded_1_and_0_imports_with_the_tier_its_answers_give(campaign, world, write):
    def ours(student, asq, phq=0):
        return [student.school.code, student.student_no] + [phq] * 9 + [0] * 7 + list(asq)

    data = write(
        [
            OURS_HEADER,
            ours(world.student_a1_3, (1, 0, 0, 0, 1)),  # acuity yes → red
            ours(world.student_a1_5, (1, 0, 0, 0, 0)),  # a positive screen → orange
            ours(world.student_a2, (0, 0, 0, 0, None), phq="好几天"),  # labels read too: PHQ-9 item 9 = 1 → orange
        ]
    )
    report = _run(campaign, data, filename=f"asq.{'xlsx' if write is xlsx_bytes else 'csv'}")
    assert (report.errors, report.new, report.written) == ([], 3, True)
    assert _tiers() == {
        world.student_a1_3.pk: RiskTier.RED,
        world.student_a1_5.pk: RiskTier.ORANGE,
        world.student_a2.pk: RiskTier.ORANGE,
    }
    stored = ScreeningResult.objects.get(student=world.student_a1_3)
    assert stored.answers["ASQ"] == {"1": "yes", "2": "no", "3": "no", "4": "no", "5": "yes"}  # keys, not codes
    assert ScreeningResult.objects.get(student=world.student_a2).answers["PHQ9"]["1"] == "1"
    assert stored.platform == "" and stored.platform_level == ""  # our own template is no other platform


def test_an_answer_that_is_no_option_says_which_answers_are(campaign, world):
    row = [world.student_a1_3.school.code, world.student_a1_3.student_no] + [0] * 16 + [2, 0, 0, 0, ""]
    with translation.override("en"):
        report = _run(campaign, csv_bytes([OURS_HEADER, row]), filename="r.csv")
    [error] = report.errors
    assert (error.line, error.column, error.value) == (2, "ASQ_1", "2")
    assert error.message == "“2” is not one of its answers: use Yes (1), No (0), Prefer not to answer."
    assert not ScreeningResult.objects.exists()


ALL = {"zh-hans": "全部", "en": "All"}
LIKERT = {
    "code": "LK4",
    "version": 1,
    "name": {"zh-hans": "四点量表（测试）", "en": "Four-point scale (test)"},
    "source": "synthetic, for tests",
    "licence": "none",
    "instructions": {"zh-hans": "请作答。", "en": "Please answer."},
    # Keys 1-4 but values 0-3: "2" is option 2's key and option 3's value.
    "options": [
        {"key": str(n + 1), "value": n, "label": {"zh-hans": zh, "en": en}}
        for n, (zh, en) in enumerate([("从不", "Never"), ("有时", "Sometimes"), ("经常", "Often"), ("总是", "Always")])
    ],
    "items": [{"number": n, "text": {"zh-hans": f"第{n}题", "en": f"Item {n}"}} for n in (1, 2)],
    "scales": [{"code": "total", "items": [1, 2], "bands": [{"min": 0, "max": 6, "key": "any", "label": ALL}]}],
}


@pytest.mark.parametrize(
    ("language", "message"),
    [
        ("en", "“2” is ambiguous: it could mean “Sometimes” / “Often”. Write the answer's label instead, or choose "
               "the platform the file comes from."),
        ("zh-hans", "“2”有歧义：可能是“有时” / “经常”。请改写为选项文字，或选择文件的来源平台。"),
    ],
)  # fmt: skip
def test_a_code_that_could_mean_two_options_is_refused_row_by_row(world, language, message):
    Instrument.objects.create(code="LK4", version=1, name="LK4", source="-", licence="-", definition=LIKERT)
    campaign = CampaignFactory(schools=[world.school_a1], with_instruments=["LK4"])
    student, other = world.student_a1_3, world.student_a1_5
    header = ["学校代码", "学号", "LK4_1", "LK4_2"]
    data = csv_bytes(
        [header, [student.school.code, student.student_no, "2", "4"], [other.school.code, other.student_no, 0, "经常"]]
    )
    with translation.override(language):
        report = _run(campaign, data, filename="lk4.csv")
    [error] = report.errors
    assert (error.line, error.column, error.value, error.message) == (2, "LK4_1", "2", message)
    assert not report.written and not ScreeningResult.objects.exists()  # nothing changed on a refused file
    # "4" is only a key, "0" only a value, "经常" a label: the other row and cell were read.
    assert _run(campaign, data, filename="lk4.csv", skip_invalid=True).new == 1
    assert ScreeningResult.objects.get().answers == {"LK4": {"1": "1", "2": "3"}}


# --- Other platforms' exports ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("write", "platform", "filename"),
    [
        (ipp_file, "ipp", "i++导出.xlsx"),
        (ipp_file, "auto", "i++导出.xlsx"),
        (xinshu_file, "xinshu", "心数导出.csv"),
        (xinshu_file, "auto", "心数导出.csv"),
    ],
)
def test_another_platforms_export_imports_as_it_is_with_its_level_beside_our_tier(
    campaign, world, write, platform, filename
):
    data = write(
        [
            (world.student_a1_3, "calm", (1, 0, 0, 0, 1), "一级预警"),
            # The platform says 二级; the answers are calm: our tier is ours, its level is kept beside it.
            (world.student_a1_5, "calm", (0, 0, 0, 0, None), "二级预警"),
            (world.student_a2, "moderate", (0, 0, 0, 0, None), "无预警"),  # another school of the campaign, by name
        ]
    )
    report = _run(campaign, data, filename=filename, platform=platform)
    assert (report.refused, report.errors, report.new, report.written) == ("", [], 3, True)
    assert report.platform.code == write.__name__.removesuffix("_file")
    assert _tiers() == {
        world.student_a1_3.pk: RiskTier.RED,
        world.student_a1_5.pk: RiskTier.GREEN,
        world.student_a2.pk: RiskTier.YELLOW,
    }
    stored = {r.student_id: (r.platform, r.platform_level) for r in ScreeningResult.objects.all()}
    code = report.platform.code
    assert stored == {
        world.student_a1_3.pk: (code, "一级预警"),
        world.student_a1_5.pk: (code, "二级预警"),
        world.student_a2.pk: (code, "无预警"),
    }
    assert report.level_tiers == {("一级预警", "red"): 1, ("二级预警", "green"): 1, ("无预警", "yellow"): 1}
    again = _run(campaign, data, filename=filename, platform=platform)
    assert (again.new, again.updated, again.unchanged) == (0, 0, 3)


def test_a_changed_platform_level_alone_is_a_change_and_re_scoring_keeps_it(campaign, world):
    rows = [(world.student_a1_3, "calm", (0, 0, 0, 0, None), "无预警")]
    _run(campaign, ipp_file(rows), platform="ipp")
    report = _run(campaign, ipp_file([(*rows[0][:3], "三级预警")]), platform="ipp")
    assert (report.updated, ScreeningResult.objects.get().platform_level) == (1, "三级预警")

    definition = copy.deepcopy(campaign.ruleset.definition)
    definition["version"] = 2
    rule = next(r for r in definition["rules"] if r["id"] == "phq9-total-moderate")
    rule["when"]["between"] = [0, 14]  # every calm result turns yellow: re-scoring writes each of them
    stricter = RuleSet.objects.create(code=campaign.ruleset.code, version=2, definition=definition)
    assert campaign_rescore(actor=world.city_centre, campaign=campaign, ruleset=stricter).changed == 1
    result = ScreeningResult.objects.get()
    assert (result.tier, result.platform, result.platform_level) == (RiskTier.YELLOW, "ipp", "三级预警")


def test_a_bare_number_in_a_file_of_letter_codes_is_refused(campaign, world):
    data = bytearray(xinshu_file([(world.student_a1_3, "calm", (0, 0, 0, 0, None), "低风险")]))
    text = data.decode("gbk").replace(",B,B,B,B,", ",1,B,B,B,", 1)
    with translation.override("zh-hans"):
        report = _run(campaign, text.encode("gbk"), filename="x.csv", platform="xinshu")
    [error] = report.errors
    assert (error.column, error.value) == ("ASQ第1题", "1")
    assert error.message == "“1”不是此题的答案，可用的答案：是 (A)、否 (B)、我不想回答。"
    assert not ScreeningResult.objects.exists()


def test_a_name_that_is_not_the_rosters_is_refused(campaign, world):
    impostor = copy.copy(world.student_a1_3)
    impostor.name = "李四"
    with translation.override("en"):
        report = _run(campaign, ipp_file([(impostor, "calm", (0, 0, 0, 0, None), "无预警")]), platform="ipp")
    [error] = report.errors
    assert (error.column, error.value) == ("姓名", "李四")
    assert error.message.startswith("This name is not the roster's name of student")
    assert not ScreeningResult.objects.exists()


def test_the_shipped_mappings_say_they_are_modelled_and_adjustable():
    assert list(platforms()) == ["ours", "ipp", "xinshu"]
    for code in ("ipp", "xinshu"):
        text = (PLATFORMS_DIR / f"{code}.yaml").read_text(encoding="utf-8")
        assert "MODELLED, NOT COPIED" in text and "a district compares it with one of its own exports" in text


# --- The admin: choose the platform, see its levels beside our tiers ------------------------------------------------

IMPORT_URL = reverse("admin:screening_screeningresult_import")
CONFIRM_URL = reverse("admin:screening_screeningresult_process_import")


@pytest.fixture
def centre(client, world):
    client.force_login(world.centre_district_a)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


def test_the_import_page_offers_the_source_platforms(centre):
    page = centre.get(IMPORT_URL)
    field = page.context["form"].fields["platform"]
    assert [code for code, _label in field.choices] == ["auto", "ours", "ipp", "xinshu"]
    content = page.content.decode()
    assert 'name="platform"' in content and "i++-style export" in content and "Source platform" in content


def test_an_ipp_export_is_checked_confirmed_and_shown_with_its_level(centre, campaign, world):
    data = ipp_file(
        [
            (world.student_a1_3, "calm", (1, 0, 0, 0, 1), "一级预警"),
            (world.student_a2, "calm", (0, 0, 0, 0, None), "无预警"),
        ]
    )
    check = centre.post(
        IMPORT_URL,
        {
            "campaign": campaign.pk,
            "platform": "ipp",
            "format": "0",
            "import_file": SimpleUploadedFile("ipp.xlsx", data),
        },
    )
    content = check.content.decode()
    assert check.context["result"].report.new == 2 and not ScreeningResult.objects.exists()
    assert re.search(r'id="results-platform">\s*i\+\+-style export<', content)
    levels = re.search(r'<table id="results-levels">.*?</table>', content, re.S)[0]
    assert re.search(r"<td>一级预警</td><td>Red</td><td>1</td>", levels)
    assert re.search(r"<td>无预警</td><td>Green</td><td>1</td>", levels)

    form = check.context["confirm_form"]
    done = centre.post(CONFIRM_URL, {name: form.initial[name] for name in form.fields})
    assert done.status_code == 302
    result = ScreeningResult.objects.get(student=world.student_a1_3)
    assert (result.tier, result.platform, result.platform_level) == (RiskTier.RED, "ipp", "一级预警")
    detail = centre.get(reverse("admin:screening_screeningresult_change", args=[result.pk])).content.decode()
    assert "i++-style export" in detail and "一级预警" in detail and "platform&#x27;s warning level" in detail.lower()


def test_the_command_reads_a_platform_export(campaign, world, tmp_path):
    path = tmp_path / "心数.csv"
    path.write_bytes(xinshu_file([(world.student_a1_3, "calm", (1, 0, 0, 0, 0), "中风险")]))
    out = io.StringIO()
    call_command("import_results", str(path), "--campaign", str(campaign.pk), "--platform", "xinshu", stdout=out)
    assert "Imported. 1 rows, 1 new" in out.getvalue()
    result = ScreeningResult.objects.get()
    assert (result.tier, result.platform, result.platform_level) == (RiskTier.ORANGE, "xinshu", "中风险")


def test_a_mapping_whose_codes_name_no_answer_refuses_the_file_and_says_where(campaign, world, tmp_path, monkeypatch):
    broken = (PLATFORMS_DIR / "xinshu.yaml").read_text(encoding="utf-8").replace('"B": "no"', '"B": "nope"')
    (tmp_path / "xinshu.yaml").write_text(broken, encoding="utf-8")
    monkeypatch.setattr("screening.import_mappings.PLATFORMS_DIR", tmp_path)
    with translation.override("en"):
        report = _run(campaign, xinshu_file([(world.student_a1_3, "calm", (0, 0, 0, 0, None), "")]), filename="x.csv")
    assert report.refused.startswith("The mapping “xinshu” reads answer code “B” of ASQ as “nope”")
    assert "screening/platforms/xinshu.yaml" in report.refused and not ScreeningResult.objects.exists()
