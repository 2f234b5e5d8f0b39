"""The student portal, walked as a student would: code → is this you → the instruments → thank you."""

import datetime
import html
import re
import threading
import time

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from roster.access_codes import access_codes_issue
from roster.models import AccessCode, Student
from screening import portal
from screening.models import ScreeningResult
from tests.factories.screening import CampaignFactory, shipped_definitions_loaded

CALM = {
    **{f"PHQ9-{n}": "0" for n in range(1, 10)},
    **{f"GAD7-{n}": "0" for n in range(1, 8)},
    **{f"ASQ-{n}": "no" for n in range(1, 5)},
}
ACUTE = {**CALM, "ASQ-1": "yes", "ASQ-5": "yes"}


@pytest.fixture
def campaign(world):
    return CampaignFactory(schools=[world.school_a1, world.school_a2])


@pytest.fixture
def code(world):
    (issued,) = access_codes_issue(actor=None, students=Student.objects.filter(pk=world.student_a1_3.pk))
    return issued


def enter(client, typed):
    return client.post(reverse("portal:start"), {"code": typed})


def token_of(response) -> str:
    found = re.search(r'name="token" value="([^"]+)"', response.content.decode())
    assert found, response.content.decode()
    return html.unescape(found.group(1))


def walk_to_questions(client, code):
    confirm = enter(client, code.code)
    assert confirm.status_code == 200, confirm.content.decode()
    return client.post(reverse("portal:confirm"), {"token": token_of(confirm), "choice": "yes"}, follow=True)


def test_a_student_answers_once_and_the_code_is_used_and_linked(client, world, campaign, code):
    start = client.get("/s/")
    assert "测评码".encode() in start.content

    confirm = enter(client, code.code.lower()[:4] + " " + code.code.lower()[4:])  # typed loosely: case, a space
    page = confirm.content.decode()
    assert "东湖第一中学" in page and "王*明" in page and "王小明" not in page  # name partly masked

    questions = client.post(reverse("portal:confirm"), {"token": token_of(confirm), "choice": "yes"}, follow=True)
    assert questions.redirect_chain == [(reverse("portal:answer"), 302)] and questions.status_code == 200
    html = questions.content.decode()
    assert html.count('class="step"') == 3  # one page per instrument
    assert "在过去的两个星期里" in html  # Chinese by default

    done = client.post(reverse("portal:answer"), {"token": token_of(questions), **CALM})
    assert done.status_code == 302 and done.url == reverse("portal:done")

    result = ScreeningResult.objects.get()
    assert (result.student, result.campaign, result.tier, result.source) == (
        world.student_a1_3,
        campaign,
        "green",
        "portal",
    )
    code.refresh_from_db()
    assert code.used_at is not None and result.access_code == code
    thanks = client.get(done.url).content.decode()
    assert "12356" in thanks and "12355" in thanks
    assert "完全不会" not in thanks  # answers are never shown back


def test_pressing_submit_twice_or_replaying_stores_one_result(client, world, campaign, code):
    questions = walk_to_questions(client, code)
    payload = {"token": token_of(questions), **ACUTE}
    first = client.post(reverse("portal:answer"), payload)
    second = client.post(reverse("portal:answer"), payload)
    assert first.url == reverse("portal:done") and second.url == reverse("portal:received")
    assert ScreeningResult.objects.count() == 1
    assert ScreeningResult.objects.get().history.count() == 1
    assert ScreeningResult.objects.get().tier == "red"


def test_back_after_submitting_shows_the_thank_you_page_not_a_form_to_send_again(client, campaign, code):
    questions = walk_to_questions(client, code)  # "this is me" → redirect → the questions, a GET
    cookie = client.cookies["portal_visit"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/s/"
    assert "no-store" in questions.headers["Cache-Control"]  # Back asks the server again, never a stored copy
    reload = client.get(reverse("portal:answer"))  # a reload before submitting shows the questions again
    assert reload.status_code == 200 and token_of(reload) == token_of(questions)
    done = client.post(reverse("portal:answer"), {"token": token_of(questions), **CALM})
    assert done.url == reverse("portal:done")
    back = client.get(reverse("portal:answer"), follow=True)  # Back from the thank-you page
    assert back.redirect_chain == [(reverse("portal:done"), 302)]
    assert "谢谢".encode() in back.content and b'name="token"' not in back.content
    assert ScreeningResult.objects.count() == 1


def test_the_questions_page_without_a_visit_leads_to_the_start_page(client, campaign, code):
    assert client.get(reverse("portal:answer")).url == reverse("portal:start")
    client.cookies["portal_visit"] = "1:2:forged"
    assert "重新输入".encode() in client.get(reverse("portal:answer")).content


@pytest.mark.postgres_only  # SQLite serialises writers; the race needs a server database
@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_submissions_store_one_result(world, campaign, code):
    questions = walk_to_questions(Client(), code)
    payload = {"token": token_of(questions), **CALM}
    barrier, outcomes = threading.Barrier(4), []

    def press():
        barrier.wait()
        outcomes.append(Client().post(reverse("portal:answer"), payload).status_code)
        connection.close()

    threads = [threading.Thread(target=press) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes == [302] * 4
    assert ScreeningResult.objects.count() == 1


def test_a_used_code_is_refused_with_a_clear_message(client, campaign, code):
    questions = walk_to_questions(client, code)
    client.post(reverse("portal:answer"), {"token": token_of(questions), **CALM})
    again = enter(client, code.code)
    assert "已经使用".encode() in again.content
    assert "visit" not in again.context


@pytest.mark.parametrize(
    "typed, message",
    [("ZZZZZZZZ", "无法识别"), ("!!!", "无法识别"), ("", "无法识别")],
)
def test_an_unknown_code_is_refused(client, campaign, code, typed, message):
    response = enter(client, typed)
    assert message.encode() in response.content
    assert ScreeningResult.objects.count() == 0


def test_an_expired_code_is_refused(client, world, campaign, code):
    AccessCode.objects.filter(pk=code.pk).update(expires_at=timezone.now() - datetime.timedelta(minutes=1))
    assert "已过期".encode() in enter(client, code.code).content


def test_answers_outside_the_window_are_refused(client, world, code):
    later = timezone.now() + datetime.timedelta(days=2)
    CampaignFactory(schools=[world.school_a1], opens_at=later, closes_at=later + datetime.timedelta(days=1))
    response = enter(client, code.code)
    assert "尚未开始".encode() in response.content


def test_a_campaign_that_closes_while_answering_refuses_the_answers(client, campaign, code, settings):
    settings.SCREENING_PORTAL_CAMPAIGN_CACHE_SECONDS = 600
    questions = walk_to_questions(client, code)
    campaign.closes_at = timezone.now() - datetime.timedelta(seconds=1)
    campaign.save()
    # The reading steps' copy still says open; the submission reads the campaign itself.
    (window,) = portal.school_campaign_windows(campaign.schools.first().pk)
    assert window.closes_at > timezone.now()
    response = client.post(reverse("portal:answer"), {"token": token_of(questions), **CALM})
    assert "已经结束".encode() in response.content
    assert ScreeningResult.objects.count() == 0
    code.refresh_from_db()
    assert code.used_at is None


def test_every_asked_item_is_required_and_nothing_is_stored_until_complete(client, campaign, code):
    questions = walk_to_questions(client, code)
    partial = {k: v for k, v in CALM.items() if k != "GAD7-3"}
    response = client.post(reverse("portal:answer"), {"token": token_of(questions), **partial})
    assert response.status_code == 400
    assert response.context["missing"] == ["GAD7-3"]
    assert ScreeningResult.objects.count() == 0
    # The ASQ acuity item becomes required once an earlier ASQ item is yes.
    response = client.post(reverse("portal:answer"), {"token": token_of(questions), **CALM, "ASQ-2": "declined"})
    assert response.context["missing"] == ["ASQ-5"]


def test_the_acuity_item_is_ignored_when_it_was_not_asked(client, campaign, code):
    questions = walk_to_questions(client, code)
    client.post(reverse("portal:answer"), {"token": token_of(questions), **CALM, "ASQ-5": "yes"})
    result = ScreeningResult.objects.get()
    assert result.tier == "green" and "5" not in result.answers["ASQ"]


def test_a_forged_token_changes_nothing(client, campaign, code):
    response = client.post(reverse("portal:answer"), {"token": "1:2:forged", **CALM})
    assert "重新输入".encode() in response.content
    assert ScreeningResult.objects.count() == 0


def test_saying_it_is_not_me_sends_the_student_back(client, campaign, code):
    confirm = enter(client, code.code)
    response = client.post(reverse("portal:confirm"), {"token": token_of(confirm), "choice": "no"})
    assert "交还给老师".encode() in response.content
    assert AccessCode.objects.get(pk=code.pk).used_at is None


def test_english_is_switchable(client, campaign, code):
    client.cookies["django_language"] = "en"
    questions = walk_to_questions(client, code)
    assert b"Over the last two weeks" in questions.content


def test_a_student_who_already_has_an_imported_result_is_told_so(client, world, campaign, code):
    from screening.services import result_record

    answers = {"PHQ9": dict.fromkeys(range(1, 10), "0"), "GAD7": dict.fromkeys(range(1, 8), "0"),
               "ASQ": dict.fromkeys(range(1, 5), "no")}  # fmt: skip
    result_record(campaign=campaign, student=world.student_a1_3, answers=answers, source="import")
    assert "已经完成".encode() in enter(client, code.code).content


def test_guessing_codes_is_slowed_down_per_address(client, campaign, code, settings):
    from screening import views_portal

    for _ in range(views_portal.FAILED_CODES_PER_ADDRESS):
        enter(client, "ZZZZZZZZ")
    response = enter(client, code.code)  # even a right code waits
    assert response.status_code == 429


def test_the_language_links_switch_and_come_back_to_the_same_page(client):
    help_zh = client.get(reverse("portal:help"))
    assert "心理援助热线".encode() in help_zh.content or b"12356" in help_zh.content
    assert b'href="/s/language/en/?next=/s/help/"' in help_zh.content
    switched = client.get(reverse("portal:language", args=["en"]), {"next": "/s/help/"})
    assert switched.status_code == 302 and switched["Location"] == "/s/help/"
    assert switched.cookies["django_language"].value == "en"
    help_en = client.get(reverse("portal:help"))
    assert b"Youth hotline" in help_en.content
    # The pages are rendered once per language: Chinese is still Chinese for the next student.
    client.cookies.pop("django_language")
    assert b"Youth hotline" not in client.get(reverse("portal:help")).content


@pytest.mark.parametrize("target", ["https://evil.example/s/", "//evil.example/s/", "/admin/", "", "/s/\\evil"])
def test_the_language_link_never_leads_outside_the_portal(client, target):
    response = client.get(reverse("portal:language", args=["en"]), {"next": target})
    assert response.status_code == 302
    assert response["Location"].startswith("/s/") and not response["Location"].startswith("//")
    assert client.get(reverse("portal:language", args=["xx"])).status_code == 404


def test_pages_reached_by_a_form_switch_language_back_to_the_start_page(client, campaign, code):
    questions = walk_to_questions(client, code)
    assert b'href="/s/language/en/?next=/s/"' in questions.content
    assert b"/s/confirm/" not in questions.content.split(b"language-switcher")[1].split(b"</nav>")[0]


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_pages_filled_from_a_shell_match_the_template_rendered_whole(rf, language, world, campaign):
    from django.template.loader import render_to_string
    from django.utils import translation

    from screening import views_portal

    def same(response, template, context):
        request = rf.get("/s/")
        expected = render_to_string(template, context, request)
        token = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')
        assert token.sub("CSRF", response.content.decode()) == token.sub("CSRF", expected)

    slots = {"token": "a:b&c", "school_name": "<东湖> & “一中”", "class_name": "7年级3班", "masked_name": "王*明",
             "campaign_name": "2026 <秋季>"}  # fmt: skip
    with translation.override(language):
        for error in ("", "代码 <错误> & 'x'"):
            same(views_portal._start(rf.get("/s/"), error), "screening/portal/start.html", {"error": error})
        same(views_portal._page(rf.post("/s/"), "screening/portal/confirm.html", slots),
             "screening/portal/confirm.html", slots)  # fmt: skip
        steps_html, count = views_portal.blank_steps_html(campaign.pk, campaign.ruleset_id, language)
        fixed = (("steps_html", steps_html), ("step_count", count))
        same(views_portal._page(rf.post("/s/"), "screening/portal/answer.html", {"token": "t<1>"}, fixed),
             "screening/portal/answer.html", {"token": "t<1>", **dict(fixed)})  # fmt: skip


def test_a_result_imported_while_the_student_answers_is_kept_and_the_student_told(client, world, campaign, code):
    from screening.services import result_record

    questions = walk_to_questions(client, code)
    answers = {"PHQ9": dict.fromkeys(range(1, 10), "1"), "GAD7": dict.fromkeys(range(1, 8), "0"),
               "ASQ": dict.fromkeys(range(1, 5), "no")}  # fmt: skip
    imported = result_record(campaign=campaign, student=world.student_a1_3, answers=answers, source="import").result
    response = client.post(reverse("portal:answer"), {"token": token_of(questions), **CALM})
    assert "已经完成".encode() in response.content
    assert list(ScreeningResult.objects.values_list("pk", "source")) == [(imported.pk, "import")]
    code.refresh_from_db()
    assert code.used_at is None


def test_a_new_campaign_reaches_the_portal_within_the_copy_lifetime(client, world, code, settings):
    settings.SCREENING_PORTAL_CAMPAIGN_CACHE_SECONDS = 0.2
    shipped_definitions_loaded()  # before the clock starts: loading the shipped files can outlast the copy
    assert "现在没有向你开放的测评".encode() in enter(client, code.code).content  # nothing open: the empty list is kept
    CampaignFactory(schools=[world.school_a1])
    assert "现在没有向你开放的测评".encode() in enter(client, code.code).content
    time.sleep(0.25)
    assert "这是你吗".encode() in enter(client, code.code).content


def test_each_language_is_offered_in_its_own_name(client):
    page = client.get(reverse("portal:start")).content.decode()
    assert ">English</a>" in page and "英语" not in page
