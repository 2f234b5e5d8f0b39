"""Opening cases for a city campaign's flagged results: 10,000 results of yellow or above → 10,000 cases, each with
its process waiting for triage, as the task worker does it after a large import (screening.tasks.results_flagged_send).

    .venv/bin/python benchmarks/case_open_bench.py --database-url postgres://postgres@127.0.0.1:5432/xinqiao_cases
    .venv/bin/python benchmarks/case_open_bench.py --database-url sqlite:////tmp/xinqiao-cases.sqlite3

The database is emptied first (migrate, flush), then holds the demo district at --students-per-class (70 gives
10,080 students), one campaign over every school and one flagged result per student (half yellow, a third orange,
the rest red), written in bulk. Only the opening is timed: `results_flagged_send`, i.e. `students_flagged` per 100
results (cases and processes in bulk, red alerts queued) in one transaction each. Afterwards it checks one active
case per student and one process per case, each with one triage task.
"""

import argparse
import datetime
import io
import os
import platform
import random
import resource
import secrets
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ["DEBUG"] = "0"  # as in production: DEBUG also records every query in memory
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    import logging

    logging.getLogger("workflows.services").setLevel(logging.WARNING)  # a line per case otherwise
    logging.getLogger("django-q").setLevel(logging.WARNING)


def create_database(database_url: str) -> None:
    if not database_url.startswith("postgres"):
        return
    import urllib.parse

    import psycopg

    parts = urllib.parse.urlparse(database_url)
    name = parts.path.lstrip("/")
    with psycopg.connect(parts._replace(path="/postgres").geturl(), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def prepare(args) -> list[int]:
    import importlib

    from django.apps import apps
    from django.core.management import call_command
    from django.utils import timezone

    from benchmarks.emptying import flush_database

    call_command("migrate", verbosity=0)
    flush_database()
    importlib.import_module("roster.migrations.0002_special_groups").load(apps, None)
    importlib.import_module("workflows.migrations.0002_workflow_tick_schedule").add_schedule(apps, None)
    call_command("load_instruments", stdout=io.StringIO())
    call_command("seed_demo", students_per_class=args.students_per_class, force=True, stdout=io.StringIO())

    from roster.models import School, Student, User
    from screening.models import Campaign, CampaignInstrument, Instrument, RuleSet, ScreeningResult

    now = timezone.now()
    campaign = Campaign.objects.create(
        name="病例开启基准", school_year="2026-2027", term="autumn",
        ruleset=RuleSet.objects.get(code="adolescent-default"), opens_at=now - datetime.timedelta(days=1),
        closes_at=now + datetime.timedelta(days=1), created_by=User.objects.get(username="city_admin"),
    )  # fmt: skip
    campaign.schools.set(School.objects.all())
    for position, code in enumerate(["PHQ9", "GAD7", "ASQ"]):
        CampaignInstrument.objects.create(campaign=campaign, instrument=Instrument.objects.get(code=code),
                                          position=position)  # fmt: skip
    rng = random.Random(7)
    students = list(Student.objects.values_list("pk", flat=True)[: args.cases])
    rows = [
        ScreeningResult(
            campaign=campaign,
            student_id=pk,
            source="import",
            answers={},
            scores={},
            ruleset=campaign.ruleset,
            tier=rng.choices(["yellow", "orange", "red"], [0.5, 0.35, 0.15])[0],
            fired_rules=[],
            submitted_at=now,
        )  # fmt: skip
        for pk in students
    ]
    ScreeningResult.objects.bulk_create(rows, batch_size=2000)
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    return list(ScreeningResult.objects.filter(campaign=campaign).values_list("pk", flat=True))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--students-per-class", type=int, default=70)
    args = parser.parse_args()
    create_database(args.database_url)
    setup_django(args.database_url)
    ids = prepare(args)
    print(f"prepared {len(ids)} flagged results")

    from screening.results_import import results_flagged_send

    started = time.perf_counter()
    sent = results_flagged_send(ids)
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    from django.db.models import Count
    from viewflow.workflow.models import Task

    from cases.models import Case
    from workflows.flows import CaseFlow
    from workflows.models import CaseProcess

    cases = Case.objects.filter(status="open").count()
    students = Case.objects.values("student").distinct().count()
    processes = CaseProcess.objects.count()
    per_case = set(CaseProcess.objects.values("case").annotate(n=Count("pk")).values_list("n", flat=True))
    triage = Task.objects.filter(flow_task=CaseFlow.triage, status="NEW").count()
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"database: {args.database_url.split(':')[0]}")
    print(f"opened {sent} flagged results → {cases} cases in {elapsed:.1f} s ({sent / elapsed:.0f} cases/s), "
          f"peak RSS {peak:.0f} MB")  # fmt: skip
    print(f"check: students with a case {students}, processes {processes}, processes per case {sorted(per_case)}, "
          f"triage tasks waiting {triage}")  # fmt: skip
    if not (cases == students == processes == triage == sent) or per_case != {1}:
        raise SystemExit("FAILED: not one case, one process and one triage task per flagged student")


if __name__ == "__main__":
    main()
