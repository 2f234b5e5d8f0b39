"""Benchmark the pages of the foundation on a realistic district: server time (median of N) and query counts.

    make bench                                   # SQLite file /tmp/xinqiao-bench.sqlite3, the demo size
    .venv/bin/python benchmarks/run.py --students-per-class 420 --database-url postgres://postgres@127.0.0.1/bench

The database named is created from scratch (SQLite file deleted first; PostgreSQL database must exist and be empty
or hold a previous benchmark). Not part of `make test`; tests/benchmarks runs a smoke-size pass.
"""

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PAGES = [
    # (login, url name, what)
    ("school_admin", "/admin/roster/student/", "student list, school admin"),
    ("district_admin", "/admin/roster/student/", "student list, district admin"),
    ("city_admin", "/admin/roster/student/", "student list, city admin"),
    ("city_admin", "/admin/roster/user/", "staff list, city admin"),
    ("school_admin", "/admin/roster/schoolclass/", "class list, school admin"),
    ("city_admin", "/", "home page, city admin"),
    ("principal", "/", "home page, principal"),
    ("homeroom", "/", "home page, homeroom teacher"),
]


def measure(*, students_per_class: int, repeats: int, stdout=sys.stdout) -> list[dict]:
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from roster.models import Student, User

    started = time.perf_counter()
    call_command("seed_demo", students_per_class=students_per_class, force=True, stdout=open(os.devnull, "w"))  # noqa: SIM115
    seed_seconds = time.perf_counter() - started
    print(f"seed: {Student.objects.count()} students in {seed_seconds:.1f} s", file=stdout)

    results = []
    for username, url, what in PAGES:
        client = Client()
        client.force_login(User.objects.get(username=username))
        client.get(url)  # warm caches and templates
        timings, queries = [], set()
        for _ in range(repeats):
            with CaptureQueriesContext(connection) as ctx:
                t0 = time.perf_counter()
                response = client.get(url)
                timings.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, (url, response.status_code)
            queries.add(len(ctx.captured_queries))
        results.append({"page": what, "median_ms": statistics.median(timings), "queries": sorted(queries)})
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--students-per-class", type=int, default=42)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--database-url", default="sqlite:////tmp/xinqiao-bench.sqlite3")
    args = parser.parse_args()

    if args.database_url.startswith("sqlite:///"):
        for suffix in ("", "-wal", "-shm"):
            Path(args.database_url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)
    os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ["ALLOWED_HOSTS"] = "testserver"

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    results = measure(students_per_class=args.students_per_class, repeats=args.repeats)
    print(
        f"\nmachine: {platform.node()} · {os.cpu_count()} cores · Python {platform.python_version()} · "
        f"{connection.vendor}"
    )
    print(f"{'page':<32} {'median ms':>10} {'queries':>10}")
    for row in results:
        print(f"{row['page']:<32} {row['median_ms']:>10.1f} {','.join(map(str, row['queries'])):>10}")


if __name__ == "__main__":
    main()
