"""Searches by student number or name never put the term in a URL (roster.search_privacy): the case list's and the
admin's search boxes post it, the page comes back at `?s=<token>`, and a term typed into the address is dropped."""

import re
from urllib.parse import unquote

import pytest
from django.urls import reverse

from roster.models import AccessLogEntry
from workflows.flows import CaseFlow

CASES = "/work/case/flows/"
STUDENTS = reverse("admin:roster_student_changelist")


def case_url(process):
    return CaseFlow.instance.reverse("process_detail", args=[process.pk])


def hrefs(response) -> list[str]:
    return [unquote(href) for href in re.findall(r'(?:href|action)="([^"]*)"', response.content.decode())]


@pytest.fixture
def two_cases(world, open_case):
    return open_case(world.student_a1_3, "yellow")[1], open_case(world.student_a1_5, "orange")[1]


def test_a_posted_case_search_finds_the_case_and_no_address_holds_the_number(client, world, two_cases):
    mine, other = two_cases
    number = world.student_a1_3.student_no
    client.force_login(world.counselor_a1)
    posted = client.post(f"{CASES}?tier=yellow&page=2", {"_search": number})
    assert posted.status_code == 303
    location = posted["Location"]
    assert number not in location and re.fullmatch(rf"{CASES}\?tier=yellow&s=[\w-]+", location)
    found = client.get(location)
    shown = found.content.decode()
    assert case_url(mine) in shown and case_url(other) not in shown
    assert f'value="{number}"' in shown  # the box shows what was searched
    assert not [href for href in hrefs(found) if number in href]
    assert number not in client.session["vf-pin-location"]  # viewflow's remembered list address
    # The access log keeps ids: nothing of the request's address, nor the number.
    assert not [e for e in AccessLogEntry.objects.all() if number in " ".join(str(v) for v in vars(e).values())]
    # The filters keep the search: same token, another tier.
    assert case_url(mine) not in client.get(location.replace("tier=yellow", "tier=red")).content.decode()


def test_a_student_number_in_the_case_list_address_is_not_searched(client, world, two_cases):
    mine, other = two_cases
    number = world.student_a1_3.student_no
    client.force_login(world.counselor_a1)
    response = client.get(CASES, {"_search": number, "tier": "yellow"})
    assert response.status_code == 303 and response["Location"] == f"{CASES}?tier=yellow"


def test_a_search_token_of_another_session_is_an_empty_search(client, world, two_cases):
    mine, other = two_cases
    client.force_login(world.counselor_a1)
    location = client.post(CASES, {"_search": world.student_a1_3.student_no})["Location"]
    client.logout()
    client.force_login(world.counselor_a1)  # a new session, e.g. the link copied into another browser
    shown = client.get(location).content.decode()
    assert case_url(mine) in shown and case_url(other) in shown


def test_the_admin_student_search_is_posted_and_no_address_holds_the_number(client, world):
    number = world.student_a1_3.student_no
    client.force_login(world.school_admin_a1)
    posted = client.post(f"{STUDENTS}?status__exact=active&p=2", {"q": number})
    assert posted.status_code == 303
    location = posted["Location"]
    assert number not in location and re.fullmatch(rf"{STUDENTS}\?status__exact=active&s=[\w-]+", location)
    found = client.get(location)
    assert [row.pk for row in found.context["cl"].result_list] == [world.student_a1_3.pk]
    assert '<form id="changelist-search" method="post"' in found.content.decode()
    # Sorting, filter, paging, export and row links carry the token, never the number.
    links = hrefs(found)
    assert [link for link in links if "s=" in link] and not [link for link in links if number in link]
    # An address with the number in it is not searched: the number is dropped.
    typed = client.get(STUDENTS, {"q": number})
    assert typed.status_code == 303 and typed["Location"] == STUDENTS


def test_the_admin_search_by_name_is_posted_too(client, world):
    client.force_login(world.school_admin_a1)  # a school role: may search its students by name
    found = client.post(STUDENTS, {"q": "王小明"}, follow=True)
    assert "王小明" not in found.redirect_chain[-1][0]
    assert [row.pk for row in found.context["cl"].result_list] == [world.student_a1_3.pk]
