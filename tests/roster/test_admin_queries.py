"""Admin lists run a constant number of queries whatever the number of rows (DESIGN §6)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from roster.roles import Role
from tests.factories.roster import SchoolClassFactory, StudentFactory, staff_with_role


def _queries(client, url):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries), response


def _grow(world, rows, grade):
    classes = [SchoolClassFactory(school=world.school_a1, grade=grade, number=n) for n in range(1, 4)]
    for n in range(rows):
        StudentFactory(school_class=classes[n % 3])
    for n, school_class in enumerate(classes):
        staff_with_role(Role.HOMEROOM_TEACHER, school_class, username=f"extra_homeroom_{grade}_{n}")


@pytest.mark.parametrize("model", ["student", "schoolclass", "user", "school"])
@pytest.mark.slow
def test_changelist_query_count_is_the_same_at_10_and_500_rows(client, world, model):
    client.force_login(world.school_admin_a1)
    url = reverse(f"admin:roster_{model}_changelist") + "?all="
    _grow(world, 8, grade=8)  # ~10 students in school A1
    small, _ = _queries(client, url)
    _grow(world, 490, grade=9)  # ~500
    large, response = _queries(client, url)
    assert large == small
    # The list's access-log entry: PostgreSQL takes the chain's advisory lock in one more query than SQLite. One of
    # the 16 is the site header's unread-notification count, the same header as on every other page.
    assert large <= 16 + (connection.vendor == "postgresql")
    if model == "student":
        assert response.context["cl"].result_count >= 500


@pytest.mark.slow
def test_home_page_query_count_does_not_grow_with_the_district(client, world):
    client.force_login(world.admin_district_a)
    small, _ = _queries(client, reverse("home"))
    _grow(world, 300, grade=8)
    large, _ = _queries(client, reverse("home"))
    assert large == small <= 12
