"""Reports and dashboards on a city (issue 7): every report page's server time (median of --repeats) and its query
counts, on a city of 200,000 students, ~196,000 screening results and 20,000 cases at every step of their process.

    createdb -h 127.0.0.1 -U postgres xinqiao_reports
    .venv/bin/python benchmarks/reports_bench.py --database-url postgres://postgres@127.0.0.1:5432/xinqiao_reports
    .venv/bin/python benchmarks/reports_bench.py --database-url postgres://... --skip-seed     # measure again
    .venv/bin/python benchmarks/reports_bench.py --students 3000 --cases 300                  # SQLite, /tmp
    .venv/bin/python benchmarks/reports_bench.py --skip-seed --only ledger                    # some pages only

Seeding (unless --skip-seed) starts from an empty database: the SQLite file is deleted, a PostgreSQL database is
dropped and created again. It writes, all synthetic (names from roster.demo's generator, fictional division codes):
- the city: 2-8 districts, schools in fours (two primary schools, grades 4-6 with 6 classes a grade; a junior school,
  grades 7-8 with 10; a senior school, grades 10-11 with 12), 40-50 students a class, until --students; the staff:
  city centre and admin, each district's centre, admin and auditor, each school's principal, admin and psychology
  teachers (one in a primary school, two otherwise), a homeroom teacher per class;
- a campaign over every school, opened three weeks ago, 98% answered: answers generated like screening.demo's,
  scored with the shipped instruments and rule set, drawn so that tiers are about 80% green, 12% yellow, 6% orange,
  2% red; with --previous-campaign, last spring's campaign too (trends);
- --cases cases for flagged results drawn at random (so 60% yellow, 30% orange, 10% red; there are more flagged
  results than cases), each at one of SCENARIOS' steps: waiting for triage, staffed, interviewed, parents contacted,
  plans, referrals requested/approved/made/with the institution's feedback, follow-ups, tier changes, closures
  proposed and approved, false positives. One case of each (step, tier) is worked through workflows.services by
  the people whose steps they are; every other case of that (step, tier) is a copy of it, written in bulk (COPY on
  PostgreSQL), its people those of its own school and class and its clock moved to when its result came in. So
  tasks whose due date is past are overdue, as in a city with a backlog; follow-ups' due dates stay in the future.
Bulk rows skip simple-history and the access log (nothing measured here reads them).

Measuring: each of PAGES is requested once to warm up, then --repeats times by a django.test.Client signed in as its
user (force_login, HTTPS, DEBUG off as deployed, the TOTP step off); the server time is the median, the query
counts are every count seen (CaptureQueriesContext). Every answer must be 200. Issue 7's bar: < 1 s a page, the same
queries whatever the size. tests/benchmarks/test_reports_bench_smoke.py runs a tiny pass.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import io
import os
import platform
import random
import secrets
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CITY = ("基准市", "990200")
DISTRICTS = [
    ("东湖区", "990201"), ("西山区", "990202"), ("南溪区", "990203"), ("北岭区", "990204"),
    ("滨江区", "990205"), ("云台区", "990206"), ("青松县", "990221"), ("石门县", "990222"),
]  # fmt: skip
# (name, grades screened, classes a grade at full size, psychology teachers)
SCHOOL_KINDS = [
    ("第{n}小学", (4, 5, 6), 6, 1),
    ("实验{n}小学", (4, 5, 6), 6, 1),
    ("第{n}初级中学", (7, 8), 10, 2),
    ("第{n}高级中学", (10, 11), 12, 2),
]
FULL_SIZE = 36_000  # students from which classes have their full count (smaller cities have fewer classes)
CAMPAIGN_NAME = "2026-2027学年秋季心理健康筛查（基准）"
PREVIOUS_NAME = "2025-2026学年春季心理健康筛查（基准）"
ANSWERED = 0.98
TIER_WEIGHTS = {"green": 80, "yellow": 12, "orange": 6, "red": 2}
PREVIOUS_TIER_WEIGHTS = {"green": 82, "yellow": 11, "orange": 5, "red": 2}


# --- Measured pages --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ids:
    """What the pages' URLs need, read from the seeded database (so --skip-seed measures the same pages)."""

    campaign: int
    previous: int | None
    district: int
    school: int
    grade: int
    school_class: int
    student: int  # a student of the principal's school with a result in both campaigns and a case


def _report(c: Ids, query: str = "", page: str = "report/") -> str:
    """The campaign report (page "report/"), or "report.xlsx", "report/print/", "report.pdf", at the node `query`."""
    return f"/screening/campaigns/{c.campaign}/{page}{'?' + query if query else ''}"


def _flagged(c: Ids, query: str = "") -> str:
    return f"/screening/campaigns/{c.campaign}/flagged/{'?' + query if query else ''}"


def _case_list(c: Ids) -> str:
    from workflows.flows import CaseFlow

    return CaseFlow.instance.reverse("process_list")


def _reports(name: str, query: str = "") -> Callable[[Ids], str]:
    def url(c: Ids) -> str:
        from django.urls import reverse

        return reverse(f"reports:{name}") + (f"?{query.format(c=c)}" if query else "")

    return url


# (who signs in, the URL or a function of the seeded Ids building it, what the page is). Add a page: one line.
PAGES: list[tuple[str, str | Callable[[Ids], str], str]] = [
    ("city_centre", lambda c: _report(c), "report, city (districts)"),
    ("district_centre", lambda c: _report(c, f"district={c.district}"), "report, district (schools)"),
    ("principal", lambda c: _report(c, f"school={c.school}"), "report, school (grades)"),
    ("counselor", lambda c: _report(c, f"school={c.school}&grade={c.grade}"), "report, grade (classes)"),
    ("homeroom", lambda c: _report(c, f"school={c.school}&grade={c.grade}&class={c.school_class}"), "report, class"),
    ("district_auditor", lambda c: _report(c, f"district={c.district}"), "report, district auditor"),
    ("city_centre", lambda c: _report(c, page="report.xlsx"), "report XLSX, city"),
    ("district_centre", lambda c: _report(c, f"district={c.district}", page="report.xlsx"), "report XLSX, district"),
    ("principal", lambda c: _report(c, f"school={c.school}", page="report.xlsx"), "report XLSX, school"),
    ("city_centre", "/screening/campaigns/", "campaign list, city"),
    ("city_centre", lambda c: _flagged(c), "flagged list, city"),
    ("district_centre", lambda c: _flagged(c), "flagged list, district"),
    ("district_centre", lambda c: _flagged(c, "page=40"), "flagged list, district p.40"),
    ("district_centre", lambda c: _flagged(c, f"school={c.school}&tier=red"), "flagged list, district→school"),
    ("counselor", lambda c: _flagged(c), "flagged list, psychology t."),
    ("principal", lambda c: _flagged(c), "flagged list, principal"),
    ("district_centre", lambda c: _report(c, f"district={c.district}", "report/print/"), "report print, district"),
    ("principal", lambda c: _report(c, f"school={c.school}", "report.pdf"), "report PDF, school"),
    ("principal", lambda c: f"/reports/students/{c.student}/", "individual report, principal"),
    ("city_centre", lambda c: f"/reports/students/{c.student}/", "individual report, city centre"),
    ("principal", lambda c: f"/reports/students/{c.student}/report.pdf", "individual report PDF"),
    ("city_centre", _case_list, "case list, city centre"),
    ("district_centre", _case_list, "case list, district centre"),
    ("principal", _case_list, "case list, principal"),
    ("counselor", _case_list, "case list, psychology teacher"),
    # Ledgers (台账, workflows/urls_ledgers.py)
    ("city_centre", _reports("ledger_key_help"), "ledger key-help, city"),
    ("district_centre", _reports("ledger_key_help"), "ledger key-help, district"),
    ("district_centre", _reports("ledger_key_help", "page=20"), "ledger key-help, district p.20"),
    (
        "district_centre",
        _reports("ledger_key_help", "school={c.school}&contact_overdue_only=on"),
        "ledger key-help, overdue contact",
    ),
    ("principal", _reports("ledger_key_help"), "ledger key-help, principal"),
    ("counselor", _reports("ledger_key_help"), "ledger key-help, psychology t."),
    ("city_centre", _reports("ledger_referrals"), "ledger referrals, city"),
    ("district_centre", _reports("ledger_referrals"), "ledger referrals, district"),
    ("principal", _reports("ledger_referrals"), "ledger referrals, principal"),
    ("city_centre", _reports("ledger_closed"), "ledger closed, city"),
    ("district_centre", _reports("ledger_closed"), "ledger closed, district"),
    ("principal", _reports("ledger_closed"), "ledger closed, principal"),
    ("city_centre", _reports("ledger_key_help_xlsx"), "ledger key-help XLSX, city"),
    ("district_centre", _reports("ledger_key_help_xlsx"), "ledger key-help XLSX, district"),
    ("city_centre", _reports("ledger_referrals_xlsx"), "ledger referrals XLSX, city"),
    ("city_centre", _reports("ledger_closed_xlsx"), "ledger closed XLSX, city"),
    ("principal", _reports("ledger_closed_xlsx"), "ledger closed XLSX, principal"),
    # Dashboards (workflows/urls_dashboards.py)
    ("city_centre", _reports("dashboard"), "dashboard, city"),
    ("district_centre", _reports("dashboard"), "dashboard, district"),
    ("district_centre", _reports("dashboard", "school={c.school}"), "dashboard, district→school"),
    ("principal", _reports("dashboard"), "dashboard, principal"),
    ("district_auditor", _reports("dashboard"), "dashboard, district auditor"),
    ("city_centre", _reports("dashboard_overdue"), "overdue tasks, city"),
    ("district_centre", _reports("dashboard_overdue"), "overdue tasks, district"),
    ("principal", _reports("dashboard_overdue"), "overdue tasks, principal"),
]


def seeded_ids() -> Ids:
    from roster.models import RoleAssignment
    from screening.models import Campaign

    grants = {g.user.username: g for g in RoleAssignment.objects.select_related("user", "school_class").filter(
        user__username__in=["district_centre", "principal", "homeroom"])}  # fmt: skip
    from cases.models import Case

    previous = Campaign.objects.filter(name=PREVIOUS_NAME).values_list("pk", flat=True).first()
    school = grants["principal"].school_id
    with_history = Case.objects.filter(school_id=school).order_by("-pk").values_list("student_id", flat=True)
    student = with_history.filter(plans__isnull=False).first() or with_history.first()
    if student is None:  # a city too small to have a case in that school
        from roster.models import Student

        student = Student.objects.filter(school_id=school).values_list("pk", flat=True).first()
    return Ids(
        campaign=Campaign.objects.get(name=CAMPAIGN_NAME).pk,
        previous=previous,
        district=grants["district_centre"].district_id,
        school=grants["principal"].school_id,
        grade=grants["homeroom"].school_class.grade,
        school_class=grants["homeroom"].school_class_id,
        student=student,
    )


def _body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def measure(*, repeats: int = 10, only: str = "", pages=None, warm: bool = True, stdout=sys.stdout) -> list[dict]:
    """Each page warmed once (unless not `warm`), then requested `repeats` times: median server ms, every query count
    seen."""
    from django.conf import settings
    from django.test.utils import override_settings

    if "testserver" not in settings.ALLOWED_HOSTS:
        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    ids = seeded_ids()
    # The ledgers' XLSX rows measure the whole file written in the request (what a city's export costs); above
    # EXPORT_BACKGROUND_ROWS the site hands it to the task worker instead: benchmarks/export_bench.py measures that.
    with override_settings(EXPORT_BACKGROUND_ROWS=sys.maxsize):
        return _measure(ids, repeats=repeats, only=only, pages=pages, warm=warm, stdout=stdout)


def _measure(ids: Ids, *, repeats: int, only: str, pages, warm: bool, stdout) -> list[dict]:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from roster.models import User

    results = []
    for username, url, what in pages or PAGES:
        if only and only not in what:
            continue
        url = url(ids) if callable(url) else url
        client = Client()
        client.force_login(User.objects.get(username=username))
        if warm:
            response = client.get(url, secure=True)  # warm templates, translations and per-process caches
            body = _body(response)
            assert response.status_code == 200, (what, url, response.status_code)
        timings, queries = [], set()
        for _ in range(repeats):
            with CaptureQueriesContext(connection) as ctx:
                started = time.perf_counter()
                response = client.get(url, secure=True)
                body = _body(response)  # a streamed export is written while it is read
                timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (what, url, response.status_code)
            queries.add(len(ctx.captured_queries))
        row = {"page": what, "user": username, "url": url, "median_ms": statistics.median(timings),
               "max_ms": max(timings), "queries": sorted(queries), "kb": len(body) // 1024}  # fmt: skip
        results.append(row)
        print(f"  {what:34s} {row['median_ms']:8.1f} ms  queries {row['queries']}", file=stdout, flush=True)
    return results


# --- Bulk writing ---------------------------------------------------------------------------------------------------


class Rows:
    """Rows written in bulk with ids given here: COPY on PostgreSQL, executemany elsewhere; sequences reset after."""

    def __init__(self):
        self.next: dict[type, int] = {}
        self.touched: set[type] = set()

    def ids(self, model, n: int) -> range:
        if model not in self.next:
            from django.db.models import Max

            self.next[model] = (model._base_manager.aggregate(m=Max("pk"))["m"] or 0) + 1
        start = self.next[model]
        self.next[model] = start + n
        return range(start, start + n)

    def write(self, model, objs: list, *, table_of=None) -> None:
        """Insert `objs` (instances with their pk set) into `model`'s own table (its local fields: a multi-table
        child is written twice, once as its parent model, once as itself)."""
        from django.db import connection

        if not objs:
            return
        self.touched.add(model)
        fields = list(model._meta.local_concrete_fields)
        table = model._meta.db_table
        columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)

        def values(obj):
            return [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields]

        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                with cursor.cursor.copy(f"COPY {connection.ops.quote_name(table)} ({columns}) FROM STDIN") as out:
                    for obj in objs:
                        out.write_row(values(obj))
            else:
                marks = ", ".join(["%s"] * len(fields))
                sql = f"INSERT INTO {connection.ops.quote_name(table)} ({columns}) VALUES ({marks})"  # noqa: S608 (names from model meta)
                for start in range(0, len(objs), 5000):
                    cursor.executemany(sql, [values(obj) for obj in objs[start : start + 5000]])

    def reset_sequences(self) -> None:
        from django.core.management.color import no_style
        from django.db import connection

        statements = connection.ops.sequence_reset_sql(no_style(), list(self.touched))
        with connection.cursor() as cursor:
            for sql in statements:
                cursor.execute(sql)


def _analyze(reconnect: bool = True) -> None:
    """Fresh planner statistics, and (outside a test's transaction) a new connection: PostgreSQL caches the plans of
    its foreign-key checks per connection, made against the tables as they were (empty: sequential scans)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    if reconnect and not connection.in_atomic_block:
        connection.close()


# --- The city ------------------------------------------------------------------------------------------------------


@dataclass
class City:
    city: object
    districts: list
    schools: list  # School, with ._classes, ._psychology, ._principal, ._centre set
    students: int
    users: int


def _layout(students: int) -> tuple[int, float, tuple[int, int]]:
    """(districts, share of the full class count, class size range) for a city of `students`."""
    districts = max(2, min(len(DISTRICTS), students // 25_000))
    if students >= FULL_SIZE:
        return districts, 1.0, (40, 50)
    share = students / FULL_SIZE
    if students >= 3_600:
        return districts, share, (40, 50)
    return districts, share, (max(3, students // 80), max(4, students // 60))


def build_city(rows: Rows, *, students: int, rng: random.Random) -> City:
    from django.contrib.auth.hashers import make_password

    from roster.demo import SPECIAL_GROUP_RATES, SURNAMES, _Names
    from roster.models import City as CityModel
    from roster.models import District, Gender, RoleAssignment, School, SchoolClass, SpecialGroup, Student, User
    from roster.roles import Role

    names = _Names(rng)
    password = make_password(secrets.token_urlsafe(16))  # nobody signs in with a password here (force_login)
    n_districts, share, class_size = _layout(students)
    users, grants = [], []

    def staff(username: str, role: str, node_field: str, node, school=None) -> User:
        user = User(id=rows.ids(User, 1)[0], username=username, name=names.person(), phone=names.phone(),
                    password=password, school=school)  # fmt: skip
        users.append(user)
        grants.append(RoleAssignment(id=rows.ids(RoleAssignment, 1)[0], user=user, role=role, **{node_field: node}))
        return user

    city = CityModel(id=rows.ids(CityModel, 1)[0], name=CITY[0], division_code=CITY[1])
    rows.write(CityModel, [city])
    staff("city_admin", Role.CITY_ADMIN, "city", city)
    staff("city_centre", Role.CITY_CENTRE, "city", city)
    districts = []
    for index, (name, code) in enumerate(DISTRICTS[:n_districts], start=1):
        district = District(id=rows.ids(District, 1)[0], city=city, name=name, division_code=code)
        districts.append(district)
        prefix = "district" if index == 1 else f"d{index}"
        district._centre = staff(f"{prefix}_centre", Role.DISTRICT_CENTRE, "district", district)
        staff(f"{prefix}_admin", Role.DISTRICT_ADMIN, "district", district)
        staff(f"{prefix}_auditor", Role.DISTRICT_AUDITOR, "district", district)
    rows.write(District, districts)

    schools, classes, pupils, tags = [], [], [], []
    groups = {g.code: g.pk for g in SpecialGroup.objects.all()}

    made, kind_index, numbers = 0, 0, Counter()
    student_ids = iter(rows.ids(Student, students))
    while made < students:
        label, grades, per_grade, psychologists = SCHOOL_KINDS[kind_index % len(SCHOOL_KINDS)]
        district = districts[(kind_index // len(SCHOOL_KINDS)) % len(districts)]
        kind_index += 1
        numbers[(district.pk, label)] += 1
        serial = sum(1 for s in schools if s.district_id == district.pk) + 1
        school = School(id=rows.ids(School, 1)[0], district=district, code=f"{district.division_code}{serial:04d}",
                        name=district.name[:2] + label.format(n=_chinese(numbers[(district.pk, label)])))  # fmt: skip
        schools.append(school)
        showcase = district.pk == districts[0].pk and label == SCHOOL_KINDS[2][0] and numbers[(district.pk, label)] == 1
        prefix = f"s{school.code}"
        school._centre = district._centre
        school._principal = staff("principal" if showcase else f"{prefix}_principal", Role.PRINCIPAL, "school",
                                  school, school)  # fmt: skip
        staff(f"{prefix}_admin", Role.SCHOOL_ADMIN, "school", school, school)
        school._psychology = [
            staff(
                "counselor" if showcase and n == 1 else f"{prefix}_psy{n}",
                Role.PSYCHOLOGY_TEACHER,
                "school",
                school,
                school,
            )  # fmt: skip
            for n in range(1, psychologists + 1)
        ]
        school._classes = []
        for grade in grades:
            for number in range(1, max(1, round(per_grade * share)) + 1):
                if made >= students:
                    break
                school_class = SchoolClass(id=rows.ids(SchoolClass, 1)[0], school=school, grade=grade, number=number)
                classes.append(school_class)
                school._classes.append(school_class)
                homeroom = showcase and grade == grades[0] and number == 1
                school_class._homeroom = staff("homeroom" if homeroom else f"{prefix}_t{grade:02d}{number:02d}",
                                               Role.HOMEROOM_TEACHER, "school_class", school_class, school)  # fmt: skip
                entry = 2026 - (grade - (1 if grade <= 6 else 7 if grade <= 9 else 10))
                for seq in range(1, min(rng.randint(*class_size), students - made) + 1):
                    surname = rng.choice(SURNAMES)
                    pk = next(student_ids)
                    pupils.append(Student(
                        id=pk, school=school, school_class=school_class,
                        student_no=f"{entry}{grade:02d}{number:02d}{seq:02d}", name=names.person(surname),
                        gender=rng.choice((Gender.MALE, Gender.FEMALE)),
                        birth_date=datetime.date(2020 - grade, 9, 1) + datetime.timedelta(days=rng.randrange(365)),
                        guardian_name=names.person(surname), guardian_phone=names.phone(),
                    ))  # fmt: skip
                    tags += [
                        (pk, groups[c])
                        for c, rate in SPECIAL_GROUP_RATES.items()
                        if c in groups and rng.random() < rate
                    ]
                    made += 1
    rows.write(School, schools)
    rows.write(SchoolClass, classes)
    rows.write(User, users)
    rows.write(RoleAssignment, grants)
    rows.write(Student, pupils)
    Through = Student.special_groups.through
    rows.write(Through, [Through(id=i, student_id=s, specialgroup_id=g) for i, (s, g) in zip(
        rows.ids(Through, len(tags)), tags, strict=True)])  # fmt: skip
    return City(city, districts, schools, made, len(users))


def _chinese(n: int) -> str:
    digits = "〇一二三四五六七八九"
    if n <= 10:
        return "十" if n == 10 else digits[n]
    return (digits[n // 10] if n >= 20 else "") + "十" + (digits[n % 10] if n % 10 else "")


# --- Screening -----------------------------------------------------------------------------------------------------


def _profiles(campaign, rng: random.Random, count: int = 4000) -> dict[str, list[dict]]:
    """Answer patterns as screening.demo draws them, scored with the campaign's instruments and rule set: tier →
    stored fields (answers, scores, tier, fired rules)."""
    from screening.demo import _profile_answers
    from screening.results_import import _answer_key
    from screening.services import campaign_definitions, result_scored

    definitions = campaign_definitions(campaign)
    found: dict[str, list[dict]] = defaultdict(list)
    for _ in range(count):
        row = _profile_answers(rng)
        answers: dict[str, dict[str, str]] = defaultdict(dict)
        for column, value in row.items():
            code, number = column.split("_")
            if value != "":
                answers[code][number] = _answer_key(value)
        fields = result_scored(campaign, definitions, dict(answers), from_import=True)
        found[fields["tier"]].append(fields)
    missing = [t for t in TIER_WEIGHTS if not found[t]]
    if missing:
        raise RuntimeError(f"no generated answers scored {missing}")
    return found


def build_campaign(rows: Rows, *, name: str, school_year: str, term: str, opens_at, closes_at, status: str,
                   weights: dict[str, int], rng: random.Random, profiles=None):  # fmt: skip
    from roster.models import School, Student, User
    from screening.models import Campaign, CampaignInstrument, Instrument, RuleSet, ScreeningResult

    campaign = Campaign.objects.create(
        name=name, school_year=school_year, term=term, ruleset=RuleSet.objects.filter(code="adolescent-default")
        .order_by("-version").first(), opens_at=opens_at, closes_at=closes_at, status=status,
        created_by=User.objects.get(username="city_admin"),
    )  # fmt: skip
    campaign.schools.set(School.objects.all())
    for position, code in enumerate(["PHQ9", "GAD7", "ASQ"]):
        instrument = Instrument.objects.filter(code=code).order_by("-version").first()
        CampaignInstrument.objects.create(campaign=campaign, instrument=instrument, position=position)
    profiles = profiles or _profiles(campaign, rng)
    tiers, tier_weights = list(weights), list(weights.values())
    span = (min(closes_at, _now()) - opens_at).total_seconds() - 3600
    students = list(Student.objects.order_by("pk").values_list("pk", flat=True))
    answered = [pk for pk in students if rng.random() < ANSWERED]
    results = []
    for pk, result_id in zip(answered, rows.ids(ScreeningResult, len(answered)), strict=True):
        fields = rng.choice(profiles[rng.choices(tiers, tier_weights)[0]])
        results.append(ScreeningResult(
            id=result_id, campaign=campaign, student_id=pk, source="import", answers=fields["answers"],
            scores=fields["scores"], tier=fields["tier"], fired_rules=fields["fired_rules"],
            ruleset_id=campaign.ruleset_id, submitted_at=opens_at + datetime.timedelta(seconds=rng.uniform(0, span)),
        ))  # fmt: skip
    rows.write(ScreeningResult, results)
    return campaign, profiles


def _now():
    from django.utils import timezone

    return timezone.now()


# --- Cases -----------------------------------------------------------------------------------------------------------


class _Cast:
    """workflows.demo._Walk's people, at the exemplar case's own school."""

    def __init__(self, school, centre):
        from roster.models import RoleAssignment
        from roster.roles import Role

        grants = RoleAssignment.objects.filter(school=school).select_related("user").order_by("pk")
        self.school = school
        self.counselor = grants.filter(role=Role.PSYCHOLOGY_TEACHER).first().user  # whom team_proposal seats
        self.principal = grants.filter(role=Role.PRINCIPAL).first().user
        self.centre = centre
        self.own_classes = set()

    def approver(self, role: str):
        from roster.roles import Role

        return {Role.PRINCIPAL: self.principal, Role.DISTRICT_CENTRE: self.centre}[role]


def _approve(walk, node, decide, role_of, **fields) -> None:
    walk.case.refresh_from_db()
    walk.decide(walk.cast.approver(role_of(walk.case)), node, decide, approve=True, **fields)


def _s_triage(walk, tier):
    pass  # opened by its flag, waiting for the psychology teacher's triage interview


def _s_false_positive(walk, tier):
    walk.triage("green", "答题时误解题意，面谈未见情绪或行为异常")


def _s_closed_false_positive(walk, tier):
    from cases import access as case_access
    from workflows import services
    from workflows.flows import CaseFlow

    _s_false_positive(walk, tier)
    _approve(walk, CaseFlow.approve_false_positive, services.closure_decided, case_access.closure_approver_role,
             evaluation="核实为误报，同意结案。")  # fmt: skip


def _s_staffing(walk, tier):
    from workflows.flows import CaseFlow

    walk.triage(tier, "学生承认近期情绪低落，需要建立帮扶小组")
    walk.take(walk.cast.counselor, CaseFlow.staffing)


def _s_first_steps(walk, tier):
    walk.triage(tier, "家庭搬迁后适应困难，情绪波动较大")
    walk.staff()


def _s_parents_to_contact(walk, tier):
    _s_first_steps(walk, tier)
    walk.interview("情绪低落约两个月，父母关系紧张，无具体自伤计划，愿意签订安全约定。")


def _s_plan(walk, tier):
    from workflows.demo import _to_plan

    _to_plan(walk, tier)


def _plan(walk, tier, needs_referral: bool) -> None:
    from workflows.demo import ORANGE_MEASURES, YELLOW_MEASURES, _to_plan

    _to_plan(walk, tier)
    measures = YELLOW_MEASURES if tier == "yellow" else ORANGE_MEASURES
    walk.plan("缓解情绪困扰，明确是否需要专业评估", measures, needs_referral=needs_referral)


def _s_referral_to_request(walk, tier):
    _plan(walk, tier, needs_referral=True)


def _s_referral_pending(walk, tier):
    _plan(walk, tier, needs_referral=True)
    walk.request_referral("持续失眠两个月伴食欲下降，校内辅导后未见改善，建议专业评估。家长已电话同意转介。")


def _s_referral_to_make(walk, tier):
    from cases import access as case_access
    from workflows import services
    from workflows.flows import CaseFlow

    _s_referral_pending(walk, tier)
    _approve(walk, CaseFlow.approve_referral, services.referral_decided, case_access.approver_role,
             note="同意转介，请尽快预约并告知家长就诊安排。")  # fmt: skip


def _s_referral_made(walk, tier):
    from workflows import services
    from workflows.flows import CaseFlow

    _s_referral_to_make(walk, tier)
    services.referral_made(walk.cast.counselor, walk.task(CaseFlow.make_referral), referred_on=_now().date(),
                           outcome="已预约门诊，家长陪同就诊。")  # fmt: skip


def _s_referral_feedback(walk, tier):
    from cases import services as cs

    _s_referral_made(walk, tier)
    referral = walk.case.referrals.get(decision="approved")
    cs.referral_record_outcome(walk.cast.counselor, referral, feedback_received_on=_now().date(),
                               feedback="诊断为适应障碍，建议心理治疗每周一次，学校继续跟进。")  # fmt: skip


def _s_follow_up_due(walk, tier):
    from workflows.demo import _to_follow_up

    _to_follow_up(walk, tier)


def _s_following(walk, tier):
    _s_follow_up_due(walk, tier)
    walk.follow_up("情绪有所改善，能按计划使用放松练习，继续观察一个周期。", "continue", reassessment_score=8)


def _s_tier_change(walk, tier):
    _s_follow_up_due(walk, tier)
    to, outcome = {"yellow": ("orange", "escalate"), "orange": ("red", "escalate"), "red": ("orange", "de_escalate")}[
        tier
    ]
    walk.follow_up("本周情况有明显变化，需调整关注等级。", outcome, to_tier=to, reason="跟进中情况变化，申请调整等级。")


def _s_closure_proposed(walk, tier):
    _s_follow_up_due(walk, tier)
    walk.follow_up("连续四周情绪稳定，复评分数明显下降。", "propose_closure", reassessment_score=4,
                   reason="干预目标已达成，建议结案并转为常规关注。")  # fmt: skip


def _s_closed(walk, tier):
    from cases import access as case_access
    from workflows import services
    from workflows.flows import CaseFlow

    _s_closure_proposed(walk, tier)
    _approve(walk, CaseFlow.approve_closure, services.closure_decided, case_access.closure_approver_role,
             evaluation="同意结案，班主任继续日常关注。")  # fmt: skip


# (name, share of cases in %, tiers it applies to, how the exemplar is worked)
SCENARIOS = [
    ("waiting for triage", 18, "yor", _s_triage),
    ("false positive to confirm", 2, "yor", _s_false_positive),
    ("closed as false positive", 4, "yor", _s_closed_false_positive),
    ("staffing", 4, "yor", _s_staffing),
    ("interview (and parents) to do", 8, "yor", _s_first_steps),
    ("parents to contact", 3, "or", _s_parents_to_contact),
    ("plan to write", 7, "yor", _s_plan),
    ("referral to request", 2, "yor", _s_referral_to_request),
    ("referral waiting for approval", 2, "yor", _s_referral_pending),
    ("referral to make", 2, "yor", _s_referral_to_make),
    ("referral made, no feedback", 3, "yor", _s_referral_made),
    ("referral with feedback", 3, "yor", _s_referral_feedback),
    ("follow-up due", 8, "yor", _s_follow_up_due),
    ("waiting for the next follow-up", 16, "yor", _s_following),
    ("tier change to approve", 1, "yor", _s_tier_change),
    ("closure to approve", 2, "yor", _s_closure_proposed),
    ("closed", 12, "yor", _s_closed),
]


@dataclass
class Exemplar:
    case_id: int
    opened_at: datetime.datetime
    users: dict[int, str]  # user id → "psychology", "homeroom", "principal", "centre"
    school_id: int
    student_id: int
    result_id: int
    rows: dict  # model → instances


def _case_models():
    from cases.models import (
        CaseTeamMember,
        Closure,
        FollowUp,
        InterventionPlan,
        InterviewNote,
        ParentContact,
        Referral,
        TierChange,
    )  # fmt: skip

    return [CaseTeamMember, InterviewNote, InterventionPlan, ParentContact, Referral, FollowUp, TierChange, Closure]


def _capture(case_id: int, opened_at, cast, student, result_id: int) -> Exemplar:
    from viewflow.workflow.models import Task

    from cases.models import Case, PlanMeasure
    from roster.models import RoleAssignment
    from workflows.models import CaseProcess, TaskClock

    case = Case.objects.get(pk=case_id)
    rows = {Case: [case]}
    for model in _case_models():
        rows[model] = list(model.objects.filter(case_id=case_id).order_by("pk"))
    rows[PlanMeasure] = list(PlanMeasure.objects.filter(plan__case_id=case_id).order_by("pk"))
    rows[CaseProcess] = list(CaseProcess.objects.filter(case_id=case_id).order_by("pk"))
    rows[Task] = list(Task.objects.filter(process__in=[p.pk for p in rows[CaseProcess]]).order_by("pk"))
    Previous = Task.previous.through
    rows[Previous] = list(Previous.objects.filter(to_task__in=[t.pk for t in rows[Task]]).order_by("pk"))
    rows[TaskClock] = list(TaskClock.objects.filter(task__in=[t.pk for t in rows[Task]]).order_by("pk"))
    homeroom = RoleAssignment.objects.get(role="homeroom_teacher", school_class_id=student.school_class_id).user_id
    users = {cast.counselor.pk: "psychology", homeroom: "homeroom", cast.principal.pk: "principal",
             cast.centre.pk: "centre"}  # fmt: skip
    return Exemplar(case_id, opened_at, users, cast.school.pk, student.pk, result_id, rows)


def _walk_exemplar(result_id: int, scenario, tier: str, school, centre) -> Exemplar:
    from django.db import transaction

    from cases.models import Case
    from screening.models import ScreeningResult
    from workflows import services
    from workflows.demo import _Walk

    result = ScreeningResult.objects.select_related("student").get(pk=result_id)
    services.case_open_for_result(result_id)
    case = Case.objects.get(student_id=result.student_id, status="open")
    cast = _Cast(school, centre)
    with transaction.atomic():
        scenario[3](_Walk(cast, case), tier)
    return _capture(case.pk, case.opened_at, cast, result.student, result_id)


class _Cloner:
    """Copies of an exemplar case's rows for another student: new ids, that student's school, class and staff,
    and its clock moved by `shift`."""

    def __init__(self, rows: Rows, staff: dict):
        from django.contrib.contenttypes.models import ContentType
        from viewflow.workflow.models import Process, Task

        from roster.models import School

        self.rows, self.staff = rows, staff  # staff: (school id, class id) → {"psychology": [ids], ...}
        self.out: dict[type, list] = defaultdict(list)
        self.school_type = str(ContentType.objects.get_for_model(School).pk)
        self.Process, self.Task = Process, Task

    def clone(self, ex: Exemplar, target: dict, rng: random.Random) -> None:
        from django.db import models

        from cases.models import Case, InterventionPlan
        from roster.models import School, Student, User
        from screening.models import ScreeningResult
        from workflows.models import CaseProcess, TaskClock

        people = self.staff[(target["school_id"], target["class_id"])]
        users = {uid: rng.choice(people[role]) if role == "psychology" else people[role]
                 for uid, role in ex.users.items()}  # fmt: skip
        shift = target["submitted_at"] + datetime.timedelta(minutes=rng.uniform(1, 30)) - ex.opened_at
        maps: dict[type, dict] = {
            User: users, School: {ex.school_id: target["school_id"]}, Student: {ex.student_id: target["student_id"]},
            ScreeningResult: {ex.result_id: target["result_id"]},
        }  # fmt: skip
        for model, objs in ex.rows.items():
            key = self.Process if model is CaseProcess else model
            maps.setdefault(key, {}).update(zip([o.pk for o in objs], self.rows.ids(key, len(objs)), strict=True))
        maps[CaseProcess] = maps[self.Process]
        maps[InterventionPlan] = maps.get(InterventionPlan, {})
        maps[Case] = maps[Case]
        for model, objs in ex.rows.items():
            for obj in objs:
                new = copy.copy(obj)
                new._state = copy.copy(obj._state)
                new._state.adding = True
                for f in obj._meta.concrete_fields:
                    value = getattr(obj, f.attname)
                    if value is None:
                        continue
                    if f.primary_key or f.is_relation:
                        target_model = model if f.primary_key and not f.is_relation else f.related_model
                        if target_model is CaseProcess:
                            target_model = self.Process
                        mapping = maps.get(target_model)
                        if mapping is not None:
                            if value not in mapping:
                                raise RuntimeError(f"{model.__name__}.{f.name}={value}: not mapped for the copy")
                            value = mapping[value]
                    elif isinstance(f, models.DateTimeField):
                        if not (model is TaskClock and obj.step == "follow_up"):  # the next follow-up stays ahead
                            value = value + shift
                    elif isinstance(f, models.DateField):
                        value = value + datetime.timedelta(days=shift.days)
                    setattr(new, f.attname, value)
                if (model is self.Task and new.owner_permission_content_type_id
                        and str(new.owner_permission_content_type_id) == self.school_type):  # fmt: skip
                    new.owner_permission_obj_pk = str(target["school_id"])
                self.out[model].append(new)

    def flush(self) -> None:
        from cases.models import Case, PlanMeasure
        from workflows.models import CaseProcess, TaskClock

        order = [Case, *_case_models(), PlanMeasure, CaseProcess, self.Task, self.Task.previous.through, TaskClock]
        for model in order:
            objs = self.out.pop(model, [])
            if model is CaseProcess:
                self.rows.write(self.Process, objs)
            self.rows.write(model, objs)
        self.out.clear()


def build_cases(rows: Rows, city: City, campaign, *, cases: int, rng: random.Random, stdout) -> dict:
    from roster.models import RoleAssignment
    from screening.models import ScreeningResult

    flagged = list(
        ScreeningResult.objects.filter(campaign=campaign).exclude(tier="green")
        .values("pk", "student_id", "tier", "submitted_at", "student__school_id", "student__school_class_id")
        .order_by("pk")
    )  # fmt: skip
    chosen = rng.sample(flagged, min(cases, len(flagged)))
    schools = {s.pk: s for s in city.schools}
    groups: dict[tuple[int, str], list[dict]] = defaultdict(list)
    for row in chosen:
        tier = row["tier"]
        choices = [i for i, s in enumerate(SCENARIOS) if tier[0] in s[2]]
        index = rng.choices(choices, [SCENARIOS[i][1] for i in choices])[0]
        groups[(index, tier)].append(
            {"result_id": row["pk"], "student_id": row["student_id"], "tier": tier, "submitted_at": row["submitted_at"],
             "school_id": row["student__school_id"], "class_id": row["student__school_class_id"]}
        )  # fmt: skip

    started = time.perf_counter()
    exemplars = {}
    for (index, tier), targets in sorted(groups.items()):
        first = targets[0]
        school = schools[first["school_id"]]
        exemplars[(index, tier)] = _walk_exemplar(first["result_id"], SCENARIOS[index], tier, school, school._centre)
    walked = time.perf_counter() - started
    print(f"  {len(exemplars)} exemplar cases worked through workflows.services in {walked:.1f} s", file=stdout)
    _analyze()

    staff: dict = {}
    homerooms = dict(RoleAssignment.objects.filter(role="homeroom_teacher").values_list("school_class_id", "user_id"))
    for school in city.schools:
        for school_class in school._classes:
            staff[(school.pk, school_class.pk)] = {
                "psychology": [u.pk for u in school._psychology], "homeroom": homerooms[school_class.pk],
                "principal": school._principal.pk, "centre": school._centre.pk,
            }  # fmt: skip
    cloner = _Cloner(rows, staff)
    copies = 0
    for key, targets in sorted(groups.items()):
        for target in targets[1:]:
            cloner.clone(exemplars[key], target, rng)
            copies += 1
            if copies % 2000 == 0:
                cloner.flush()
    cloner.flush()
    return {"exemplars": len(exemplars), "copies": copies, "walk_s": walked,
            "per_scenario": {f"{SCENARIOS[i][0]} ({t})": len(v) for (i, t), v in sorted(groups.items())}}  # fmt: skip


# --- Seeding -------------------------------------------------------------------------------------------------------


def seed(*, students: int = 200_000, cases: int = 20_000, previous_campaign: bool = False, seed_value: int = 2026,
         stdout=sys.stdout) -> dict:  # fmt: skip
    """Write the city, its campaign(s) and cases into the (migrated, empty) database. Returns timings and counts."""
    from django.core.management import call_command
    from django.db import connection, transaction

    from screening.models import RuleSet

    rng = random.Random(seed_value)
    rows = Rows()
    timings = {}
    t0 = time.perf_counter()
    if not RuleSet.objects.filter(code="adolescent-default").exists():
        call_command("load_instruments", stdout=io.StringIO())
    with transaction.atomic():
        city = build_city(rows, students=students, rng=rng)
        rows.reset_sequences()
    timings["city"] = time.perf_counter() - t0
    print(f"  city: {len(city.districts)} districts, {len(city.schools)} schools, {city.students} students, "
          f"{city.users} staff in {timings['city']:.1f} s", file=stdout, flush=True)  # fmt: skip
    _analyze()

    t = time.perf_counter()
    now = _now()
    day = datetime.timedelta(days=1)
    profiles = None
    if previous_campaign:
        with transaction.atomic():
            _, profiles = build_campaign(rows, name=PREVIOUS_NAME, school_year="2025-2026", term="spring",
                                         opens_at=now - 200 * day, closes_at=now - 180 * day, status="closed",
                                         weights=PREVIOUS_TIER_WEIGHTS, rng=rng)  # fmt: skip
            rows.reset_sequences()
    with transaction.atomic():
        campaign, _ = build_campaign(rows, name=CAMPAIGN_NAME, school_year="2026-2027", term="autumn",
                                     opens_at=now - 21 * day, closes_at=now + 7 * day, status="open",
                                     weights=TIER_WEIGHTS, rng=rng, profiles=profiles)  # fmt: skip
        rows.reset_sequences()
    timings["results"] = time.perf_counter() - t
    print(f"  results: {campaign.results.count()} (+ previous campaign: {previous_campaign}) in "
          f"{timings['results']:.1f} s", file=stdout, flush=True)  # fmt: skip
    _analyze()

    t = time.perf_counter()
    made = build_cases(rows, city, campaign, cases=cases, rng=rng, stdout=stdout)
    rows.reset_sequences()
    timings["cases"] = time.perf_counter() - t
    print(f"  cases: {made['exemplars']} worked + {made['copies']} copies in {timings['cases']:.1f} s",
          file=stdout, flush=True)  # fmt: skip
    t = time.perf_counter()
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    else:
        _analyze(reconnect=False)
    timings["analyze"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    return {"timings": timings, "students": city.students, "schools": len(city.schools), **made}


def summary() -> str:
    """What the database holds: cases by status and tier, open tasks by step, overdue first steps."""
    from django.db.models import Count
    from viewflow.workflow.models import Task

    from cases.models import Case
    from screening.models import ScreeningResult

    now = _now()
    results = dict(ScreeningResult.objects.values_list("tier").annotate(n=Count("pk")).order_by())
    cases = Counter({f"{s}/{t}": n for s, t, n in Case.objects.values_list("status", "tier").annotate(n=Count("pk"))
                     .order_by()})  # fmt: skip
    open_tasks = Task.objects.exclude(status__in=["DONE", "CANCELED"])
    steps = Counter(str(t).rsplit(".", 1)[-1] for t in open_tasks.values_list("flow_task", flat=True))
    overdue = open_tasks.filter(flow_task_type="HUMAN", clock__due_at__lt=now).count()
    return (f"results by tier {results}\ncases by status/tier {dict(sorted(cases.items()))}\n"
            f"open tasks by step {dict(sorted(steps.items()))}\nopen tasks past their due date: {overdue}")  # fmt: skip


# --- Command line ----------------------------------------------------------------------------------------------------


def setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ["DEBUG"] = "0"  # as deployed (DEBUG would also keep every query in memory)
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    os.environ["TWO_FACTOR_ENFORCED"] = "0"  # force_login has no TOTP device to pass
    os.environ["ALLOWED_HOSTS"] = "testserver"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    import logging

    for name in ("workflows", "cases", "screening", "django-q", "roster", "axes", "weasyprint", "fontTools"):
        logging.getLogger(name).setLevel(logging.ERROR)  # a line per case, sign-in or PDF style otherwise


def fresh_database(database_url: str) -> None:
    """An empty database of that name: the SQLite file deleted, the PostgreSQL database dropped and created."""
    if database_url.startswith("sqlite:///"):
        for suffix in ("", "-wal", "-shm"):
            Path(database_url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)
        return
    import urllib.parse

    import psycopg

    parts = urllib.parse.urlparse(database_url)
    name = parts.path.lstrip("/")
    with psycopg.connect(parts._replace(path="/postgres").geturl(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def machine() -> str:
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            version = f"PostgreSQL {cursor.fetchone()[0]}"
    else:
        import sqlite3

        version = f"{connection.vendor} {sqlite3.sqlite_version}"
    return (f"{platform.node()} · {os.cpu_count()} cores · {platform.platform()} · Python "
            f"{platform.python_version()} · {version}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default="sqlite:////tmp/xinqiao-reports.sqlite3")
    parser.add_argument("--students", type=int, default=200_000)
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--previous-campaign", action="store_true", help="last spring's campaign too (trends)")
    parser.add_argument("--skip-seed", action="store_true", help="measure the database a previous run seeded")
    parser.add_argument("--only", default="", help="only the pages whose description contains this")
    args = parser.parse_args()

    if not args.skip_seed:
        fresh_database(args.database_url)
    setup_django(args.database_url)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    if not args.skip_seed:
        print(f"seeding {args.students} students, {args.cases} cases …", flush=True)
        made = seed(students=args.students, cases=args.cases, previous_campaign=args.previous_campaign)
        t = made["timings"]
        print(f"seed: {t['total']:.0f} s (city {t['city']:.0f} s, results {t['results']:.0f} s, cases "
              f"{t['cases']:.0f} s of which {made['walk_s']:.0f} s working {made['exemplars']} exemplars, "
              f"analyze {t['analyze']:.0f} s)")  # fmt: skip
    print(summary())
    print(f"\nmeasuring ({args.repeats} requests a page) …", flush=True)
    results = measure(repeats=args.repeats, only=args.only)
    print(f"\nmachine: {machine()}")
    print(f"{'page':<34} {'user':<18} {'median ms':>10} {'max ms':>8} {'queries':>10} {'KB':>6}")
    for row in results:
        flag = "  > 1 s" if row["median_ms"] > 1000 else ""
        print(f"{row['page']:<34} {row['user']:<18} {row['median_ms']:>10.1f} {row['max_ms']:>8.1f} "
              f"{','.join(map(str, row['queries'])):>10} {row['kb']:>6}{flag}")  # fmt: skip


if __name__ == "__main__":
    main()
