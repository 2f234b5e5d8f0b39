"""Simplified Chinese by default, English on request, and a complete zh-hans catalog."""

import re
from pathlib import Path

import polib
from django.urls import reverse

CATALOG = Path(__file__).resolve().parent.parent / "locale/zh_Hans/LC_MESSAGES/django.po"


def test_the_login_page_is_chinese_even_for_an_english_browser(client, db):
    response = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    page = response.content.decode()
    assert '<html lang="zh-hans">' in page
    assert "用户名" in page and "登录" in page


def test_the_language_switcher_turns_the_ui_english(client, db):
    response = client.post(reverse("set_language"), {"language": "en", "next": reverse("login")}, follow=True)
    page = response.content.decode()
    assert '<html lang="en">' in page
    assert "Username" in page and "用户名" not in page


def test_a_forged_language_cookie_falls_back_to_chinese(client, db):
    client.cookies["django_language"] = "xx-evil"
    assert "用户名" in client.get(reverse("login")).content.decode()


def test_the_chinese_catalog_is_complete_and_keeps_placeholders():
    catalog = polib.pofile(str(CATALOG))
    placeholder = re.compile(r"%\(\w+\)[sd]")
    assert [e.msgid for e in catalog.untranslated_entries()] == []
    assert [e.msgid for e in catalog.fuzzy_entries()] == []

    def translations(entry):
        return list(entry.msgstr_plural.values()) if entry.msgid_plural else [entry.msgstr]

    broken = [
        e.msgid
        for e in catalog
        for text in translations(e)
        if sorted(set(placeholder.findall(e.msgid_plural or e.msgid))) != sorted(set(placeholder.findall(text)))
    ]
    assert broken == []
