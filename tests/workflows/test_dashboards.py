"""The case dashboards (issue 7 item 4): figures hand-counted at school, district and city level, each number's link
leading to a list of as many rows, scope (a principal their school, a district centre its district, out of scope is a
404), and a constant number of queries whatever the number of cases."""

import datetime
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cases import services as case_services
from roster.models import AccessLogEntry, AccessOutcome
from roster.roles import Role
from tests.factories.cases import active, take
from tests.factories.roster import StudentFactory, staff_with_role
from workflows import dashboards, services
from workflows.flows import CaseFlow

DASHBOARD = "/reports/dashboard/"
OVERDUE = "/reports/dashboard/overdue/"
DAY = datetime.timedelta(days=1)
INTERVIEW, PARENT_CONTACT = str(CaseFlow.interview.task_title), str(CaseFlow.parent_contact.task_title)


def staffed(world, process, tier, counselor):
    """Triaged at `tier` and staffed from the roster: the interview (and for orange/red the parent contact) opens."""
    services.triage_done(counselor, take(counselor, process, CaseFlow.triage), tier=tier, reason="确认")
    case = process.case
    case.refresh_from_db()
    services.staffing_done(counselor, take(counselor, process, CaseFlow.staffing), case_services.team_proposal(case))


def overdue(process, node, hours=5):
    """Time passes: the step's due time (its clock, workflows.deadlines) is behind us."""
    from workflows.models import TaskClock

    task = active(process, node)
    TaskClock.objects.filter(task=task).update(due_at=timezone.now() - datetime.timedelta(hours=hours))
    return task


def set_opened(case, when):
    type(case).objects.filter(pk=case.pk).update(opened_at=when)


@pytest.fixture
def scene(world, campaign, open_case):
    """Seven cases, hand-counted (the month is the current calendar month in Asia/Shanghai):

    school A1: c1 red open, interview overdue (counselor_a1); c2 orange open, first interview 2 days after its flag;
               c3 closed this month 10 days after its flag (a false positive); c4 yellow opened last month, first
               interviewed last month, a referral awaiting feedback (and one answered, one waiting for approval).
    school A2: c5 red open, interview (counselor_a2) and parent contact (homeroom_a2) overdue.
    school B1: c6 yellow open, first interview 4 days after its flag.
    other city X1: c7 orange open (never counted).
    """
    campaign.schools.add(world.school_a2, world.school_x1)
    world.principal_a2 = staff_with_role(Role.PRINCIPAL, world.school_a2, username="principal_a2")
    world.homeroom_a2 = staff_with_role(Role.HOMEROOM_TEACHER, world.class_a2, username="homeroom_a2")
    month = dashboards.month_of(timezone.now())
    s = {}
    c1, p1 = open_case(world.student_a1_3, "red")
    staffed(world, p1, "red", world.counselor_a1)
    overdue(p1, CaseFlow.interview)

    c2, p2 = open_case(StudentFactory(school_class=world.class_a1_3), "orange")
    staffed(world, p2, "orange", world.counselor_a1)
    set_opened(c2, month.start + DAY)
    case_services.interview_record(world.counselor_a1, c2, "面谈", held_at=month.start + 3 * DAY)

    c3, p3 = open_case(StudentFactory(school_class=world.class_a1_5), "yellow")
    services.triage_done(world.counselor_a1, take(world.counselor_a1, p3, CaseFlow.triage), tier="green",
                         reason="误报")  # fmt: skip
    services.closure_decided(world.principal_a1, take(world.principal_a1, p3, CaseFlow.approve_false_positive),
                             approve=True)  # fmt: skip
    type(c3).objects.filter(pk=c3.pk).update(opened_at=month.start, closed_at=month.start + 10 * DAY)

    c4, _p4 = open_case(world.student_a1_5, "yellow")
    set_opened(c4, month.start - 5 * DAY)
    case_services.interview_record(world.counselor_a1, c4, "上月面谈", held_at=month.start - 2 * DAY)
    case_services.interview_record(world.counselor_a1, c4, "本月复谈", held_at=month.start + DAY)
    referrals = [
        case_services.referral_request(
            world.counselor_a1, c4, institution="市精神卫生中心", reason="评估", parental_consent="given"
        )  # fmt: skip
        for _ in range(3)
    ]
    for referral in referrals[:2]:
        case_services.referral_decide(world.principal_a1, referral, approve=True)
    case_services.referral_record_outcome(world.counselor_a1, referrals[0], referred_on=timezone.localdate())
    case_services.referral_record_outcome(world.counselor_a1, referrals[1], referred_on=timezone.localdate(),
                                          feedback="已就诊")  # fmt: skip

    c5, p5 = open_case(world.student_a2, "red")
    staffed(world, p5, "red", world.counselor_a2)
    overdue(p5, CaseFlow.interview, hours=30)
    overdue(p5, CaseFlow.parent_contact)

    c6, _p6 = open_case(world.student_b1, "yellow")
    set_opened(c6, month.start + 2 * DAY)
    counselor_b1 = staff_with_role(Role.PSYCHOLOGY_TEACHER, world.school_b1, username="counselor_b1")
    case_services.interview_record(counselor_b1, c6, "面谈", held_at=month.start + 6 * DAY)

    c7, _p7 = open_case(world.student_x, "orange")
    s.update(c1=c1, c2=c2, c3=c3, c4=c4, c5=c5, c6=c6, c7=c7, p1=p1, p5=p5, month=month)
    return s


def board_of(client, user, query=""):
    client.force_login(user)
    response = client.get(DASHBOARD + query)
    assert response.status_code == 200, response.content[:500]
    return response.context["board"], response


def figures(f):
    return {
        "red": f.open_by_tier["red"], "orange": f.open_by_tier["orange"], "yellow": f.open_by_tier["yellow"],
        "green": f.open_by_tier["green"], "new": f.new, "closed": f.closed, "interview": f.median_interview_days,
        "closure": f.median_closure_days, "overdue": f.overdue, "referrals": f.referrals_pending,
        "caseload": f.caseload_average,
    }  # fmt: skip


A1 = {"red": 1, "orange": 1, "yellow": 1, "green": 0, "new": 3, "closed": 1, "interview": 2.0, "closure": 10.0,
      "overdue": 1, "referrals": 1, "caseload": 2.0}  # fmt: skip
A2 = {"red": 1, "orange": 0, "yellow": 0, "green": 0, "new": 1, "closed": 0, "interview": None, "closure": None,
      "overdue": 2, "referrals": 0, "caseload": 1.0}  # fmt: skip
B1 = {"red": 0, "orange": 0, "yellow": 1, "green": 0, "new": 1, "closed": 0, "interview": 4.0, "closure": None,
      "overdue": 0, "referrals": 0, "caseload": 0.0}  # fmt: skip
DISTRICT_A = {"red": 2, "orange": 1, "yellow": 1, "green": 0, "new": 4, "closed": 1, "interview": 2.0,
              "closure": 10.0, "overdue": 3, "referrals": 1, "caseload": 1.5}  # fmt: skip
CITY = {"red": 2, "orange": 1, "yellow": 2, "green": 0, "new": 5, "closed": 1, "interview": 3.0, "closure": 10.0,
        "overdue": 3, "referrals": 1, "caseload": 1.0}  # fmt: skip


def test_a_principal_sees_their_school_hand_counted(client, world, scene):
    board, response = board_of(client, world.principal_a1)
    assert board.node == dashboards.Node("school", world.school_a1.pk, world.school_a1.name)
    assert figures(board.total) == A1
    assert board.rows == []
    assert [(line.label, line.count) for line in board.overdue_by_step] == [(INTERVIEW, 1)]
    assert [(line.label, line.count) for line in board.overdue_by_person] == [(world.counselor_a1.name, 1)]
    assert [(line.label, line.count) for line in board.caseload] == [(world.counselor_a1.name, 2)]
    page = response.content.decode()
    assert world.school_a2.name not in page and world.school_b1.name not in page


def test_a_district_centre_sees_its_district_by_school_and_drills_to_one(client, world, scene):
    board, _ = board_of(client, world.centre_district_a)
    assert board.node.level == "district" and board.node.pk == world.district_a.pk
    assert figures(board.total) == DISTRICT_A
    assert {row.node.pk: figures(row.figures) for row in board.rows} == {world.school_a1.pk: A1, world.school_a2.pk: A2}
    assert {(line.label, line.count) for line in board.overdue_by_step} == {
        (INTERVIEW, 2), (PARENT_CONTACT, 1)
    }  # fmt: skip
    assert {(line.label, line.count) for line in board.overdue_by_person} == {
        (world.counselor_a1.name, 1), (world.counselor_a2.name, 1), (world.homeroom_a2.name, 1)
    }  # fmt: skip
    drilled, response = board_of(client, world.centre_district_a, f"?school={world.school_a2.pk}")
    assert figures(drilled.total) == A2
    assert [label for label, _url in response.context["crumbs"]] == [world.district_a.name, world.school_a2.name]


def test_the_city_centre_sees_the_city_by_district_and_never_another_city(client, world, scene):
    board, _ = board_of(client, world.city_centre)
    assert board.node.level == "city" and board.node.pk == world.city.pk
    assert figures(board.total) == CITY
    rows = {row.node.pk: figures(row.figures) for row in board.rows}
    assert rows[world.district_a.pk] == DISTRICT_A
    assert rows[world.district_b.pk] == B1
    school, _ = board_of(client, world.city_centre, f"?school={world.school_b1.pk}")
    assert figures(school.total) == B1


def test_last_month_counts_what_happened_then(client, world, scene):
    previous = scene["month"].previous.key
    board, response = board_of(client, world.principal_a1, f"?month={previous}")
    assert (board.total.new, board.total.closed, board.total.median_interview_days) == (1, 0, 3.0)  # c4
    assert board.total.open_total == 3  # open now, whatever the month
    assert response.context["next_url"]


def _count(client, url):
    response = client.get(url)
    assert response.status_code == 200, url
    context = response.context
    if "page_obj" in context:  # the case list (viewflow's list view)
        return context["page_obj"].paginator.count
    return context["page"].paginator.count  # the overdue list and the referral ledger


@pytest.mark.parametrize("persona", ["principal_a1", "centre_district_a", "city_centre"])
def test_every_number_links_to_a_list_of_as_many(client, world, scene, persona):
    """Each count opens its list with that many rows; a median opens the cases it is taken over."""
    board, response = board_of(client, getattr(world, persona))
    population = {"interview": 1 if persona != "city_centre" else 2, "closure": board.total.closed,
                  "caseload": board.total.open_total}  # fmt: skip
    checked = 0
    for cell in response.context["total"]:
        assert _count(client, cell.url) == population.get(cell.kind, cell.value), (cell.kind, cell.url)
        checked += 1
    assert checked == 12
    for row in response.context["rows"]:
        assert _count(client, row.cells[0].url) == row.cells[0].value  # red per school or district
    for line, url in response.context["overdue_by_step"] + response.context["overdue_by_person"]:
        assert _count(client, url) == line.count
    for line, url in response.context["caseload"]:
        assert _count(client, url) == line.count


def test_the_overdue_list_masks_names_and_links_each_case(client, world, scene):
    client.force_login(world.centre_district_a)
    response = client.get(OVERDUE + f"?district={world.district_a.pk}")
    page = response.content.decode()
    assert response.status_code == 200 and response.context["page"].paginator.count == 3
    assert world.student_a1_3.name not in page and "王*明" in page
    assert CaseFlow.instance.reverse("process_detail", args=[scene["p1"].pk]) in page
    rows = response.context["rows"]
    assert rows[0].case == str(scene["c5"])  # the most overdue first
    assert AccessLogEntry.objects.filter(object_type="cases.case", action="list").exists()


@pytest.mark.parametrize(
    ("persona", "query", "status"),
    [
        ("principal_a1", "", 200),
        ("principal_a1", "?school={school_a1}", 200),
        ("principal_a1", "?school={school_a2}", 404),
        ("principal_a1", "?district={district_a}", 404),
        ("principal_a1", "?city={city}", 404),
        ("centre_district_a", "?school={school_a2}", 200),
        ("centre_district_a", "?district={district_b}", 404),
        ("centre_district_a", "?school={school_b1}", 404),
        ("centre_district_a", "?school={school_x1}", 404),
        ("centre_district_a", "?city={city}", 404),
        ("auditor_district_a", "?school={school_a1}", 200),
        ("city_centre", "?district={district_b}", 200),
        ("city_centre", "?school={school_x1}", 404),
        ("city_centre", "?district={district_x}", 404),
        ("city_centre", "?school=abc", 404),
        ("city_centre", "?school={school_a1}&district={district_a}", 404),
        ("homeroom_a1_3", "", 404),
        ("counselor_a1", "", 404),
        ("school_admin_a1", "", 404),
        ("admin_district_a", "", 404),
        ("city_admin", "", 404),
        ("nobody", "", 404),
    ],
)
@pytest.mark.parametrize("path", [DASHBOARD, OVERDUE])
def test_who_may_open_which_dashboard(client, world, persona, query, status, path):
    ids = {name: getattr(world, name).pk for name in ("school_a1", "school_a2", "school_b1", "school_x1", "district_a",
                                                      "district_b", "district_x", "city")}  # fmt: skip
    client.force_login(getattr(world, persona))
    response = client.get(path + query.format(**ids))
    assert response.status_code == status
    outcome = AccessOutcome.OK if status == 200 else AccessOutcome.DENIED
    if path == DASHBOARD or status == 404:
        assert AccessLogEntry.objects.filter(object_type="workflows.dashboard", outcome=outcome).exists()


@pytest.mark.parametrize("month", ["2026-13", "2026", "x", "1999-01"])
def test_a_malformed_month_is_missing(client, world, month):
    client.force_login(world.city_centre)
    assert client.get(DASHBOARD + f"?month={month}").status_code == 404


def test_the_pages_need_a_login(client, world):
    for path in (DASHBOARD, OVERDUE):
        response = client.get(path)
        assert response.status_code == 302 and "login" in response.url


def test_the_page_is_not_cached(client, world):
    client.force_login(world.principal_a1)
    assert "no-store" in client.get(DASHBOARD)["Cache-Control"]


# --- A constant number of queries ---------------------------------------------------------------------------------


def _queries(client, url):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries)


def _grow(world, open_case, n):
    """More of everything: cases in every school, staffed and overdue, closed, interviewed; more staff."""
    for i in range(n):
        school_class = (world.class_a1_3, world.class_a2, world.class_b1)[i % 3]
        case, process = open_case(StudentFactory(school_class=school_class), ("red", "orange", "yellow")[i % 3])
        if school_class is world.class_a1_3:
            staffed(world, process, "red", world.counselor_a1)
            overdue(process, CaseFlow.interview)
            case_services.interview_record(world.counselor_a1, case, "面谈")
    for i in range(n // 3):
        staff_with_role(Role.PSYCHOLOGY_TEACHER, world.school_a2, username=f"extra_counselor_{i}")


@pytest.mark.parametrize(
    ("persona", "query"),
    [("principal_a1", ""), ("centre_district_a", ""), ("city_centre", ""), ("city_centre", "?school={school}")],
)
@pytest.mark.parametrize("path", [DASHBOARD, OVERDUE])
def test_query_count_does_not_grow_with_the_cases(client, world, scene, open_case, persona, query, path):
    client.force_login(getattr(world, persona))
    url = path + query.format(school=world.school_a1.pk)
    small = _queries(client, url)
    _grow(world, open_case, 9)
    large = _queries(client, url)
    assert large == small
    assert large <= 25 + (connection.vendor == "postgresql")


def test_the_page_shows_numbers_as_links_and_masks_nothing_it_should_not(client, world, scene):
    _board, response = board_of(client, world.centre_district_a)
    page = response.content.decode()
    assert re.search(r'href="/work/case/flows/\?district=\d+&amp;tier=red&amp;active=true">2<', page)
    assert world.student_a1_3.name not in page and world.student_a2.name not in page


def test_the_top_bar_and_the_dashboard_lead_to_the_dashboard_and_the_ledgers(client, world):
    client.force_login(world.principal_a1)
    home = client.get("/").content.decode()
    assert 'class="dashboard-link" href="/reports/dashboard/"' in home
    board = client.get("/reports/dashboard/").content.decode()
    for ledger in ("/reports/ledgers/key-help/", "/reports/ledgers/referrals/", "/reports/ledgers/closed/"):
        assert f'href="{ledger}"' in board
    client.force_login(world.homeroom_a1_3)  # no dashboard: no link to a door that refuses them
    assert "dashboard-link" not in client.get("/").content.decode()
