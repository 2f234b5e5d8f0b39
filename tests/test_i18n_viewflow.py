"""viewflow's own UI strings (its bundled zh_Hans catalog is empty) come from our locale_viewflow/ catalog."""

import re
from pathlib import Path

import polib
import viewflow
from django.utils.translation import gettext, override, pgettext
from viewflow.workflow.status import PROCESS, STATUS

CATALOG = Path(__file__).resolve().parent.parent / "locale_viewflow/zh_Hans/LC_MESSAGES/django.po"
VIEWFLOW_CATALOG = Path(viewflow.__file__).resolve().parent / "locale/zh_Hans/LC_MESSAGES/django.po"

# %(name)s / %(n)d, bare %s / %d, and str.format fields such as {task} or {self.object.pk}
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|%[sd]|\{[\w.]*\}")


def translations(entry):
    return list(entry.msgstr_plural.values()) if entry.msgid_plural else [entry.msgstr]


def test_the_viewflow_catalog_is_complete_and_keeps_placeholders():
    catalog = polib.pofile(str(CATALOG))
    assert catalog.metadata["Language"] == "zh_Hans"
    assert catalog.metadata["Plural-Forms"] == "nplurals=1; plural=0;"
    assert [e.msgid for e in catalog.untranslated_entries()] == []
    assert [e.msgid for e in catalog.fuzzy_entries()] == []
    assert [e.msgid for e in catalog if any(not text.strip() for text in translations(e))] == []

    broken = [
        e.msgid
        for e in catalog
        for text in translations(e)
        if sorted(set(PLACEHOLDER.findall(e.msgid_plural or e.msgid))) != sorted(set(PLACEHOLDER.findall(text)))
    ]
    assert broken == []


def test_every_msgid_of_viewflows_own_catalog_is_translated_here():
    ours = {(e.msgctxt, e.msgid, e.msgid_plural) for e in polib.pofile(str(CATALOG))}
    theirs = {(e.msgctxt, e.msgid, e.msgid_plural) for e in polib.pofile(str(VIEWFLOW_CATALOG)) if not e.obsolete}
    assert sorted(theirs - ours, key=str) == []


def test_viewflow_pages_and_statuses_render_in_chinese():
    with override("zh-hans"):
        assert gettext("Inbox") == "我的待办"
        assert gettext("Queue") == "待领取"
        assert gettext("Task {task} has been completed.").format(task="#7") == "任务 #7 已办理完成。"
        assert str(STATUS.ASSIGNED.label) == "已领取"
        assert str(PROCESS.DONE.label) == "已完成"
        assert pgettext("STATUS", "Started") == "办理中"
    with override("en"):
        assert gettext("Inbox") == "Inbox"
        assert str(STATUS.ASSIGNED.label) == "Assigned"
