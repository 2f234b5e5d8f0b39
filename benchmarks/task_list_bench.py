"""Task lists at city scale: a psychology teacher's queue and inbox, and a district centre's queue, with --cases open
cases (each a process with an open task) in the database: queries per page and server time per page; then the
frontend's pages themselves (inbox, queue, case list) through the whole Django stack, as their users load them.

    .venv/bin/python benchmarks/task_list_bench.py --database-url sqlite:////tmp/xinqiao-tasks.sqlite3
    .venv/bin/python benchmarks/task_list_bench.py --database-url postgres://postgres@127.0.0.1:5432/xinqiao_tasks

The database is emptied first, then holds the demo district at --students-per-class (700 gives 100,800 students),
one flagged result per student for --cases of them, and their cases opened the way a large import opens them. A
page is the first 50 rows of `workflows.selectors` with everything a row shows read; each is timed 20 times.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from case_open_bench import create_database, prepare, setup_django  # noqa: E402

PAGE = 50


FRONTEND_PAGES = (
    ("counselor", "inbox", "inbox page, psychology teacher"),
    ("counselor", "queue", "queue page, psychology teacher"),
    ("counselor", "process_list", "case list page, psychology teacher"),
    ("centre", "queue", "queue page, district centre"),
    ("centre", "process_list", "case list page, district centre"),
)


def time_pages(users: dict, repeats: int = 20) -> None:
    """Each page requested `repeats` times by a signed-in client (session, middleware, templates, the menu's
    counts): the median and worst server time, the rows shown and the queries per request."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from workflows.flows import CaseFlow

    for who, name, label in FRONTEND_PAGES:
        client = Client()
        client.force_login(users[who])
        url = CaseFlow.instance.reverse(name)
        response = client.get(url, secure=True)  # warm templates and the per-worker caches (HTTPS, as deployed)
        assert response.status_code == 200, (url, response.status_code)
        times, counts = [], set()
        for _ in range(repeats):
            with CaptureQueriesContext(connection) as queries:
                t = time.perf_counter()
                response = client.get(url, secure=True)
                times.append((time.perf_counter() - t) * 1000)
            counts.add(len(queries))
        rows = response.content.decode().count("<tr") - 1
        print(f"{label:36s} rows {rows:3d}  queries {sorted(counts)}  median {statistics.median(times):6.1f} ms  "
              f"max {max(times):6.1f} ms  {len(response.content) // 1024} KB")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--students-per-class", type=int, default=700)
    parser.add_argument("--reuse", action="store_true", help="measure the database a previous run prepared")
    parser.add_argument("--red", type=int, default=0,
                        help="make this many of the open cases red (issue 16: 500 of 100,000), spread over the ids, "
                             "the counselor's school first; checks each is on the first page of the queue")  # fmt: skip
    args = parser.parse_args()
    create_database(args.database_url)
    setup_django(args.database_url)
    if not args.reuse:
        started = time.perf_counter()
        ids = prepare(args)
        # On PostgreSQL a connection caches its foreign-key check plans; made against the empty case tables they
        # read whole tables (seq scans) for every row written later. A deployment's tables are not empty: open
        # the first thousand, let the statistics see them and start a new connection, as a fresh worker would.
        from django.db import connection

        from screening.results_import import results_flagged_send

        results_flagged_send(ids[:1000])
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
            connection.close()
        results_flagged_send(ids[1000:])
        print(f"prepared {len(ids)} open cases in {time.perf_counter() - started:.0f} s")

    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from viewflow.workflow.models import Task

    from roster.models import RoleAssignment, User
    from workflows import selectors, services
    from workflows.flows import CaseFlow

    counselor = User.objects.get(username="counselor")
    centre = RoleAssignment.objects.filter(role="district_centre").select_related("user").first().user
    # Some of the counselor's school's cases taken, so that the inbox has rows too.
    if not args.reuse:
        for task in selectors.queue(counselor)[:PAGE]:
            services.task_claim(counselor, Task.objects.get(pk=task.pk))

    red_ids = []
    if args.red:
        from cases.models import Case

        school_id = RoleAssignment.objects.filter(user=counselor, role="psychology_teacher").values("school_id")
        # Exactly --red of the open cases red (the preparation's mix has a sixth red): the others orange.
        Case.objects.filter(tier="red").update(tier="orange")  # a benchmark fixture: no history rows wanted
        candidates = list(Case.objects.order_by("pk").values_list("pk", flat=True))
        step = max(1, len(candidates) // args.red)
        red_ids = candidates[::step][: args.red]  # spread over the city, as a screening's red results are
        Case.objects.filter(pk__in=red_ids).update(tier="red")  # a benchmark fixture: no history rows wanted
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE cases_case")
        at_school = Case.objects.filter(pk__in=red_ids, school_id__in=school_id).count()
        print(f"red cases: {len(red_ids)} in the city ({Case.objects.filter(tier='red').count()} in the database), "
              f"{at_school} at the counselor's school")  # fmt: skip

    def page(fn, user):
        def run():
            rows = list(fn(user)[:PAGE])
            return [(t.process.caseprocess.case.tier, t.process.caseprocess.case.student.name, t.due) for t in rows]

        return run

    print(f"open tasks in the database: {Task.objects.exclude(status__in=['DONE', 'CANCELED']).count()}, "
          f"of them triage: {Task.objects.filter(flow_task=CaseFlow.triage, status='NEW').count()}")  # fmt: skip
    for label, run in (
        ("queue, psychology teacher", page(selectors.queue, counselor)),
        ("inbox, psychology teacher", page(selectors.inbox, counselor)),
        ("queue, district centre", page(selectors.queue, centre)),
    ):
        for user in (counselor, centre):
            user.__dict__.pop("_roster_scope", None)
        with CaptureQueriesContext(connection) as queries:
            rows = run()
        times = []
        for _ in range(20):
            for user in (counselor, centre):
                user.__dict__.pop("_roster_scope", None)  # a new request reads the scope again
            t = time.perf_counter()
            run()
            times.append((time.perf_counter() - t) * 1000)
        print(f"{label:28s} rows {len(rows):3d}  queries {len(queries)}  median {statistics.median(times):6.1f} ms  "
              f"max {max(times):6.1f} ms")  # fmt: skip
    if red_ids:
        first = [t.process.caseprocess.case.tier for t in selectors.queue(counselor)[:PAGE]]
        waiting = min(PAGE, selectors.queue(counselor).filter(process__caseprocess__case__tier="red").count())
        print(f"queue's first page: {first.count('red')} red of {len(first)} rows (the red waiting first: "
              f"{first[:waiting] == ['red'] * waiting})")  # fmt: skip
    os.environ.setdefault("ALLOWED_HOSTS", "testserver")
    from django.conf import settings

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    time_pages({"counselor": counselor, "centre": centre})
    print(f"machine: {os.uname().sysname} {os.uname().release}, {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
