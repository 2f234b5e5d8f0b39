"""The signal queue at city scale (issue 20, Numbers: "the signal queue … under 1 s at city scale with constant
queries"): --schools schools, --signals signals of which --open wait for triage, then the queue page as a school's
psychology teacher and as a district centre loads it, through the whole Django stack (session, middleware, menu,
template), each timed --repeats times, with its queries counted on two different pages of rows.

    .venv/bin/python benchmarks/care_queue_bench.py --database-url postgres://postgres@127.0.0.1:5432/xinqiao_care
    .venv/bin/python benchmarks/care_queue_bench.py                                   # SQLite, /tmp
    .venv/bin/python benchmarks/care_queue_bench.py --schools 20 --signals 3000 --open 500   # smaller

The database is made afresh (the SQLite file deleted, the PostgreSQL database dropped and created), then seeded with
a city (fictional division codes) of 4 districts, the schools spread over them, one class of --students-per-school
students a school, a psychology teacher and a principal at the first school (`counselor`, `principal`), the first
district's centre (`centre`); the signals spread over every school and source, tiers mixed, the open ones due from
two days ago to two days ahead (some overdue), the rest triaged. Seeding writes no history (nothing measured reads
it). tests/benchmarks/test_care_queue_bench_smoke.py runs a tiny pass.
"""

from __future__ import annotations

import argparse
import datetime
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CITY = ("关注基准市", "990400")
DISTRICTS = [("东区", "990401"), ("西区", "990402"), ("南区", "990403"), ("北区", "990404")]
GOAL_SECONDS = 1.0


def seed(*, schools: int = 200, signals: int = 30_000, open_signals: int = 5_000, students_per_school: int = 50,
         seed_value: int = 2026, stdout=sys.stdout) -> dict:  # fmt: skip
    """The city and its signals into the (migrated, empty) database. Returns counts and the seconds it took."""
    from django.contrib.auth.hashers import make_password
    from django.db import transaction
    from django.utils import timezone

    from benchmarks.reports_bench import Rows, _analyze, _chinese
    from cases.models import Reporter, Signal, SignalSource, SignalStatus
    from roster.demo import SURNAMES, _Names
    from roster.models import City, District, Gender, RoleAssignment, School, SchoolClass, Student, User
    from roster.roles import Role
    from screening.definitions import RiskTier

    started = time.perf_counter()
    rng = random.Random(seed_value)
    names = _Names(rng)
    rows = Rows()
    now = timezone.now()
    users, grants, school_rows, classes, pupils, made = [], [], [], [], [], []
    login = make_password(None)  # the benchmark signs in with force_login

    def staff(username: str, role: str, **node) -> None:
        user = User(id=rows.ids(User, 1)[0], username=username, name=names.person(), password=login)
        users.append(user)
        grants.append(RoleAssignment(id=rows.ids(RoleAssignment, 1)[0], user=user, role=role, **node))

    with transaction.atomic():
        city = City(id=rows.ids(City, 1)[0], name=CITY[0], division_code=CITY[1])
        rows.write(City, [city])
        districts = [District(id=rows.ids(District, 1)[0], city=city, name=n, division_code=c) for n, c in DISTRICTS]
        rows.write(District, districts)
        staff("centre", Role.DISTRICT_CENTRE, district=districts[0])
        for n in range(schools):
            district = districts[n % len(districts)]
            school = School(id=rows.ids(School, 1)[0], district=district, stage="junior",
                            code=f"{district.division_code}{n + 1:04d}",
                            name=f"{district.name}第{_chinese(n // len(districts) % 99 + 1)}中学{n}")  # fmt: skip
            school_rows.append(school)
            klass = SchoolClass(id=rows.ids(SchoolClass, 1)[0], school=school, grade=8, number=1)
            classes.append(klass)
            for seq in range(1, students_per_school + 1):
                pupils.append(Student(
                    id=rows.ids(Student, 1)[0], school=school, school_class=klass, student_no=f"0801{seq:03d}",
                    name=names.person(rng.choice(SURNAMES)), gender=rng.choice((Gender.MALE, Gender.FEMALE)),
                ))  # fmt: skip
        staff("counselor", Role.PSYCHOLOGY_TEACHER, school=school_rows[0])
        staff("principal", Role.PRINCIPAL, school=school_rows[0])
        rows.write(School, school_rows)
        rows.write(SchoolClass, classes)
        rows.write(User, users)
        rows.write(RoleAssignment, grants)
        rows.write(Student, pupils)
        sources = [s for s in SignalSource.values if s not in (SignalSource.SCREENING, SignalSource.CHECKLIST)]
        decided = [SignalStatus.NO_ACTION, SignalStatus.CASE_OPENED, SignalStatus.ADDED_TO_CASE]
        tiers = [RiskTier.YELLOW] * 6 + [RiskTier.ORANGE] * 3 + [RiskTier.RED] + [RiskTier.GREEN] * 2
        ids = rows.ids(Signal, signals)
        for n, pk in enumerate(ids):
            student = pupils[(n * 7919) % len(pupils)]
            waiting = n < open_signals
            raised = now - datetime.timedelta(minutes=rng.randrange(1, 60 * 24 * 120))
            made.append(Signal(
                id=pk, student=student, school_id=student.school_id, source=rng.choice(sources),
                tier=rng.choice(tiers), reason="情绪低落爱哭", detail="", reporter=Reporter.STAFF, raised_at=raised,
                due_at=now + datetime.timedelta(minutes=rng.randrange(-2 * 24 * 60, 2 * 24 * 60)) if waiting else None,
                status=SignalStatus.OPEN if waiting else rng.choice(decided),
                decided_at=None if waiting else raised + datetime.timedelta(hours=2), escalation_level=0,
            ))  # fmt: skip
        rows.write(Signal, made)
        rows.reset_sequences()
    _analyze()
    seconds = time.perf_counter() - started
    print(f"  city: {len(districts)} districts, {len(school_rows)} schools, {len(pupils)} students, {len(made)} "
          f"signals ({open_signals} open) in {seconds:.1f} s", file=stdout, flush=True)  # fmt: skip
    return {"schools": len(school_rows), "students": len(pupils), "signals": len(made), "seconds": seconds}


PAGES = (
    ("counselor", "", "queue, psychology teacher (waiting)"),
    ("counselor", "?status=all&page=2", "queue, psychology teacher (all, page 2)"),
    ("principal", "", "queue, principal (read-only)"),
    ("centre", "", "queue, district centre (waiting)"),
    ("centre", "?page=3", "queue, district centre (waiting, page 3)"),
    ("centre", "?status=all&source=concern", "queue, district centre (concerns, all)"),
)


def _total(user, query: str) -> int:
    """How many signals the page's filters match (what its pager counts)."""
    from urllib.parse import parse_qs

    from workflows.signals import signal_queue_for

    params = {k: v[0] for k, v in parse_qs(query.lstrip("?")).items()}
    status = params.get("status", "open")
    return signal_queue_for(user, source=params.get("source", ""), status="" if status == "all" else status).count()


def measure(*, repeats: int = 10, stdout=sys.stdout) -> list[dict]:
    """Each page of PAGES requested `repeats` times by a signed-in client: median and worst server time, rows shown
    and queries per request."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from roster.models import User

    users = {u.username: u for u in User.objects.filter(username__in=["counselor", "principal", "centre"])}
    base = reverse("care:signals")
    results = []
    for who, query, label in PAGES:
        client = Client()
        client.force_login(users[who])
        client.get(base + query, secure=True)  # warm: the session, the scope, the templates (HTTPS, as deployed)
        times, counts, shown = [], set(), 0
        for _ in range(repeats):
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                response = client.get(base + query, secure=True)
                times.append(time.perf_counter() - started)
            assert response.status_code == 200, (label, response.status_code)
            counts.add(len(queries.captured_queries))
            shown = response.content.decode().count('class="signal-row')
        row = {"page": label, "median": statistics.median(times), "worst": max(times), "queries": sorted(counts),
               "rows": shown, "total": _total(users[who], query)}  # fmt: skip
        results.append(row)
        print(f"  {label}: median {row['median'] * 1000:.0f} ms, worst {row['worst'] * 1000:.0f} ms, "
              f"{row['rows']} of {row['total']} rows, queries {row['queries']}", file=stdout, flush=True)  # fmt: skip
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default="sqlite:////tmp/xinqiao-care-queue-bench.sqlite3")
    parser.add_argument("--schools", type=int, default=200)
    parser.add_argument("--signals", type=int, default=30_000)
    parser.add_argument("--open", type=int, default=5_000)
    parser.add_argument("--students-per-school", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    from benchmarks.reports_bench import fresh_database, machine, setup_django

    fresh_database(args.database_url)
    setup_django(args.database_url)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    print(f"seeding {args.schools} schools, {args.signals} signals ({args.open} open) …", flush=True)
    seed(schools=args.schools, signals=args.signals, open_signals=args.open,
         students_per_school=args.students_per_school)  # fmt: skip
    print("measuring …", flush=True)
    results = measure(repeats=args.repeats)
    print(f"\nmachine: {machine()}")
    print(f"{'page':<45} {'median ms':>9} {'worst ms':>9} {'queries':<10} rows   goal < {GOAL_SECONDS:.0f} s")
    for r in results:
        ok = "ok" if r["worst"] < GOAL_SECONDS and len(r["queries"]) == 1 else "MISSED"
        print(f"{r['page']:<45} {r['median'] * 1000:>9.0f} {r['worst'] * 1000:>9.0f} {str(r['queries']):<10} "
              f"{r['rows']}/{r['total']}  {ok}")  # fmt: skip


if __name__ == "__main__":
    main()
