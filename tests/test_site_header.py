"""One product, one look (issue 18, item 5): the same site header, with the same links for the same person, on our
pages, in the administration site and in the task frontend; each link only for whom its page lets in; the page's
section marked; one palette stylesheet for all three and the student portal."""

from html.parser import HTMLParser

import pytest
from django.templatetags.static import static

from tests.factories.cases import active, case_url, page, staffed_yellow, task_url
from workflows.flows import CaseFlow

pytestmark = pytest.mark.django_db

PALETTE = static("css/palette.css")


class _Landmarks(HTMLParser):
    """The page's banners and mains, the site navigations' labels and their links as (class, href, current)."""

    def __init__(self):
        super().__init__()
        self.headers, self.navs, self.mains, self.links = 0, [], 0, []
        self._in_nav = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "header":
            self.headers += 1
        elif tag == "main":
            self.mains += 1
        elif tag == "nav":
            self._in_nav = "site-nav" in (attrs.get("class") or "")
            if self._in_nav:
                self.navs.append(attrs.get("aria-label"))
        elif tag == "a" and self._in_nav:
            self.links.append((attrs["class"].split()[0], attrs["href"], attrs.get("aria-current")))

    def handle_endtag(self, tag):
        if tag == "nav":
            self._in_nav = False


def landmarks(response) -> _Landmarks:
    assert response.status_code == 200
    parsed = _Landmarks()
    parsed.feed(page(response))
    return parsed


def nav(parsed) -> list[tuple[str, str]]:
    return [(css, href) for css, href, _current in parsed.links]


def current(parsed) -> list[str]:
    return [css for css, _href, is_current in parsed.links if is_current == "page"]


def test_the_same_header_leads_everywhere_from_our_pages_the_admin_and_the_task_pages(client, world):
    client.force_login(world.centre_district_a)  # works cases, reads dashboards, keeps a duty roster, uses the admin
    home = landmarks(client.get("/"))
    admin = landmarks(client.get("/admin/"))
    inbox = landmarks(client.get(CaseFlow.instance.reverse("inbox")))

    expected = [
        ("home-link", "/"),
        ("case-inbox-link", CaseFlow.instance.reverse("inbox")),
        ("case-list-link", CaseFlow.instance.reverse("process_list")),
        ("signals-link", "/care/signals/"),  # the signal queue (issue 20)
        ("dashboard-link", "/reports/dashboard/"),
        ("screening-link", "/screening/campaigns/"),
        ("duty-roster-link", "/duty/"),
        ("admin-link", "/admin/"),
        ("notifications-link", "/notifications/"),
    ]
    assert nav(home) == nav(admin) == nav(inbox) == expected
    assert (current(home), current(admin), current(inbox)) == (["home-link"], ["admin-link"], ["case-inbox-link"])
    for parsed in (home, admin, inbox):
        # One banner, one main, and one site navigation, named.
        assert parsed.headers == 1 and parsed.mains == 1 and len(parsed.navs) == 1 and parsed.navs[0]


def test_a_teacher_finds_no_admin_link_and_the_task_and_case_pages_mark_their_section(client, world, open_case):
    _case, process = open_case(world.student_a1_3, "yellow")
    staffed_yellow(world, process)
    interview = active(process, CaseFlow.interview)
    client.force_login(world.counselor_a1)

    home = landmarks(client.get("/"))
    task = landmarks(client.get(task_url(interview, "execute")))
    case = landmarks(client.get(case_url(process)))
    reports = landmarks(client.get("/screening/campaigns/"))

    assert nav(home) == nav(task) == nav(case) == nav(reports)
    assert "admin-link" not in dict(nav(home)) and "duty-roster-link" not in dict(nav(home))
    assert [css for css, _ in nav(home)][:3] == ["home-link", "case-inbox-link", "case-list-link"]
    assert current(task) == ["case-inbox-link"] and current(case) == ["case-list-link"]
    assert current(reports) == ["screening-link"]
    assert task.headers == case.headers == 1 and task.mains == case.mains == 1


def test_a_school_admin_gets_the_admin_link_but_no_case_links(client, world):
    client.force_login(world.school_admin_a1)
    links = dict(nav(landmarks(client.get("/admin/roster/student/"))))
    assert links["admin-link"] == "/admin/" and "case-inbox-link" not in links and "case-list-link" not in links


def test_the_header_signs_out_by_post_and_offers_the_account_pages(client, world):
    client.force_login(world.counselor_a1)
    for url in ("/", CaseFlow.instance.reverse("inbox")):
        shown = page(client.get(url))
        assert '<form method="post" action="/accounts/logout/">' in shown
        assert 'href="/accounts/password/change/"' in shown and 'href="/accounts/email/"' in shown
        assert world.counselor_a1.name in shown and 'id="language-select"' in shown


def test_one_palette_stylesheet_for_our_pages_the_admin_the_task_pages_and_the_portal(client, world):
    client.force_login(world.centre_district_a)
    for url in ("/", "/admin/", CaseFlow.instance.reverse("inbox")):
        assert f'href="{PALETTE}"' in page(client.get(url)), url
    client.logout()
    portal = page(client.get("/s/"))
    assert f'href="{PALETTE}"' in portal and "site-nav" not in portal  # the portal's own look, no staff navigation
