"""One small organisation tree and named personas, so tests read like stories about people.

City C (districts A and B) and another city X:
    A: schools A1 (classes 7-3, 7-5) and A2 (class 8-1)      B: school B1 (class 7-1)      X: school X1 (class 10-1)
Each class has one student: student_a1_3, student_a1_5, student_a2, student_b1, student_x.
"""

import io
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.core.management import call_command

from roster.roles import Role
from tests.factories.roster import (
    CityFactory,
    DistrictFactory,
    SchoolClassFactory,
    SchoolFactory,
    StudentFactory,
    UserFactory,
    staff_with_role,
)

# The case fixtures (campaign, open_case) for every test module, beside the helpers it imports from there.
pytest_plugins = ["tests.factories.cases"]


def pytest_configure(config):
    """Tests assert Chinese pages; compile the catalogs as `make` does, in case pytest runs on its own. Only where the
    tests are planned, never in an xdist worker: two workers would write the same .mo files while the other reads."""
    if not hasattr(config, "workerinput"):
        from scripts.compile_messages import main

        main()


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by these markers
def pytest_collection_modifyitems(config, items):
    """Every test under tests/e2e is `browser`; the benchmark smoke runs and every test on the seeded demo district
    are `slow` (besides those marked by hand); a `postgres_only` test is skipped on any other database."""
    from django.db import connection

    here = Path(__file__).parent
    e2e, benchmarks = here / "e2e", here / "benchmarks"
    elsewhere = pytest.mark.skip(reason="needs a server database's concurrency: runs on PostgreSQL")
    for item in items:
        if e2e in item.path.parents:
            item.add_marker(pytest.mark.browser)
        if benchmarks in item.path.parents or "demo_district" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
        if connection.vendor != "postgresql" and item.get_closest_marker("postgres_only"):
            item.add_marker(elsewhere)


@pytest.fixture(scope="session", autouse=True)
def access_log_flushable():
    """The access log refuses DELETE and TRUNCATE, and so would the flush that ends a transactional test (the e2e
    walk-throughs, the PostgreSQL races): around that flush only, its triggers are dropped and put back
    (migration 0005's own SQL). Tests that roll back never touch them."""
    from importlib import import_module

    from django.db import connection
    from django.test.testcases import TransactionTestCase

    migration = import_module("roster.migrations.0005_access_log")
    original = TransactionTestCase._fixture_teardown

    def run(statements):
        with connection.cursor() as cursor:
            for table in migration.TABLES:
                for statement in statements(connection.vendor, table):
                    cursor.execute(statement)

    def fixture_teardown(self):
        run(migration.drop_sql)
        try:
            original(self)
        finally:
            run(migration.triggers_sql)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(TransactionTestCase, "_fixture_teardown", fixture_teardown)
        yield


@pytest.fixture(autouse=True)
def default_language():
    """A request in English (a cookie, a header) leaves English active in the thread afterwards: each test starts
    in the product's default language, whatever ran before it."""
    from django.conf import settings
    from django.utils import translation

    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture(autouse=True)
def empty_cache():
    """Counters kept in the cache (e.g. wrong portal codes per address) must not leak from one test to the next."""
    from django.core.cache import cache

    from screening import portal, views_portal

    cache.clear()
    # Per-worker copies keyed by ids: SQLite hands the same ids out again after a test's rollback.
    portal.portal_caches_clear()
    views_portal.blank_steps_html.cache_clear()
    views_portal._shell.cache_clear()


@pytest.fixture(autouse=True)
def fresh_audit_anchor():
    """The access log's anchor file (roster.audit) holds no line of a test whose database was rolled back."""
    from pathlib import Path

    from django.conf import settings

    yield
    Path(settings.AUDIT_ANCHOR_FILE).unlink(missing_ok=True)


def build_world() -> SimpleNamespace:
    """The personas of the module docstring; the `world` fixture, or a module-scoped seed that needs them once."""
    w = SimpleNamespace()
    w.city = CityFactory(name="示范市", division_code="990100")
    w.district_a = DistrictFactory(city=w.city, name="东湖区", division_code="990101")
    w.district_b = DistrictFactory(city=w.city, name="西山区", division_code="990102")
    w.school_a1 = SchoolFactory(district=w.district_a, code="9901010001", name="东湖第一中学")
    w.school_a2 = SchoolFactory(district=w.district_a, code="9901010002", name="东湖第二中学")
    w.school_b1 = SchoolFactory(district=w.district_b, code="9901020001", name="西山中学")
    w.class_a1_3 = SchoolClassFactory(school=w.school_a1, grade=7, number=3)
    w.class_a1_5 = SchoolClassFactory(school=w.school_a1, grade=7, number=5)
    w.class_a2 = SchoolClassFactory(school=w.school_a2, grade=8, number=1)
    w.class_b1 = SchoolClassFactory(school=w.school_b1, grade=7, number=1)
    w.student_a1_3 = StudentFactory(school_class=w.class_a1_3, name="王小明")
    w.student_a1_5 = StudentFactory(school_class=w.class_a1_5)
    w.student_a2 = StudentFactory(school_class=w.class_a2)
    w.student_b1 = StudentFactory(school_class=w.class_b1)

    w.other_city = CityFactory(name="邻市", division_code="980100")
    w.district_x = DistrictFactory(city=w.other_city, name="邻区", division_code="980101")
    w.school_x1 = SchoolFactory(district=w.district_x, code="9801010001", name="邻市中学")
    w.class_x = SchoolClassFactory(school=w.school_x1, grade=10, number=1)
    w.student_x = StudentFactory(school_class=w.class_x)

    w.superuser = UserFactory(username="root", is_superuser=True, is_staff=True)
    w.nobody = UserFactory(username="nobody")
    w.city_admin = staff_with_role(Role.CITY_ADMIN, w.city, username="city_admin")
    w.city_centre = staff_with_role(Role.CITY_CENTRE, w.city, username="city_centre")
    w.city_admin_x = staff_with_role(Role.CITY_ADMIN, w.other_city, username="city_admin_x")
    w.admin_district_a = staff_with_role(Role.DISTRICT_ADMIN, w.district_a, username="admin_district_a")
    w.centre_district_a = staff_with_role(Role.DISTRICT_CENTRE, w.district_a, username="centre_district_a")
    w.auditor_district_a = staff_with_role(Role.DISTRICT_AUDITOR, w.district_a, username="auditor_district_a")
    w.admin_district_b = staff_with_role(Role.DISTRICT_ADMIN, w.district_b, username="admin_district_b")
    w.school_admin_a1 = staff_with_role(Role.SCHOOL_ADMIN, w.school_a1, username="school_admin_a1")
    w.principal_a1 = staff_with_role(Role.PRINCIPAL, w.school_a1, username="principal_a1")
    w.counselor_a1 = staff_with_role(Role.PSYCHOLOGY_TEACHER, w.school_a1, username="counselor_a1")
    w.homeroom_a1_3 = staff_with_role(Role.HOMEROOM_TEACHER, w.class_a1_3, username="homeroom_a1_3")
    w.school_admin_a2 = staff_with_role(Role.SCHOOL_ADMIN, w.school_a2, username="school_admin_a2")
    w.counselor_a2 = staff_with_role(Role.PSYCHOLOGY_TEACHER, w.school_a2, username="counselor_a2")
    w.school_admin_b1 = staff_with_role(Role.SCHOOL_ADMIN, w.school_b1, username="school_admin_b1")
    return w


@pytest.fixture
def world(db):
    return build_world()


@pytest.fixture
def demo_district(db):
    """The demo seed at a small size (2 students a class), for tests that walk the printed logins."""
    call_command("seed_demo", students_per_class=2, force=True, stdout=io.StringIO())
