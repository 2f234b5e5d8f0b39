"""Results import at city scale: 100,000 results (PHQ-9 + GAD-7 + ASQ) scored, tiered and stored, then re-imported.

    .venv/bin/python benchmarks/results_import_bench.py --database-url postgres://postgres@127.0.0.1:5432/xinqiao_bench
    .venv/bin/python benchmarks/results_import_bench.py --database-url sqlite:////tmp/xinqiao-import-bench.sqlite3

Needs a database holding ~100,000 active students (run benchmarks/import_bench.py against it first). Creates a
campaign over every school, writes a CSV of random answers for up to --rows students, imports it twice (the second
time must write nothing). Each phase runs in its own process, so each reports its own peak memory (ru_maxrss).

Times per phase: `stored` is reading, scoring, comparing and writing up to the commit; `signals` is what runs after
commit (`student_flagged` for every result of yellow or above, e.g. queueing red alerts); `total` is both. The random
answers flag far more students than a real screening does (about 60 %, a fifth of them red), so `signals` is
pessimistic. The benchmark's campaign, results and history are deleted first and last, and the red alerts it queued
right after each phase.
"""

import argparse
import csv
import datetime
import io
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CSV_PATH = Path(tempfile.gettempdir()) / "results-bench.csv"
CAMPAIGN_NAME = "results import benchmark"


def setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    import logging

    logging.getLogger("django-q").setLevel(logging.WARNING)  # one line per queued alert otherwise


def _clear() -> None:
    """Raw deletes: the ORM's delete would write a "deleted" history row for each of 100,000 results first."""
    from django.db import connection

    from screening.models import Campaign, ScreeningResult

    campaigns = list(Campaign.objects.filter(name=CAMPAIGN_NAME).values_list("pk", flat=True))
    with connection.cursor() as cursor:
        for model in (ScreeningResult.history.model, ScreeningResult):
            table = connection.ops.quote_name(model._meta.db_table)
            for pk in campaigns:
                cursor.execute(f"DELETE FROM {table} WHERE campaign_id = %s", [pk])  # noqa: S608
    Campaign.history.filter(name=CAMPAIGN_NAME).delete()
    Campaign.objects.filter(name=CAMPAIGN_NAME).delete()


def _drop_queued_alerts(after_pk: int) -> int:
    """The red alerts this run queued (with the ORM broker) would notify real staff if a worker ever ran here."""
    from django_q.models import OrmQ

    queued = [q.pk for q in OrmQ.objects.filter(pk__gt=after_pk) if q.func() == "screening.tasks.red_alert_send"]
    OrmQ.objects.filter(pk__in=queued).delete()
    return len(queued)


def phase_setup(args) -> dict:
    from django.core.management import call_command
    from django.utils import timezone

    from roster.models import School, Student, User
    from screening.models import Campaign, CampaignInstrument, Instrument, RuleSet

    call_command("migrate", verbosity=0)
    call_command("load_instruments", stdout=io.StringIO())
    _clear()
    campaign = Campaign.objects.create(
        name=CAMPAIGN_NAME, school_year="2026-2027", term="autumn",
        ruleset=RuleSet.objects.filter(code="adolescent-default").order_by("version").first(),
        opens_at=timezone.now() - datetime.timedelta(days=1), closes_at=timezone.now() + datetime.timedelta(days=1),
        created_by=User.objects.order_by("pk").first(),
    )  # fmt: skip
    campaign.schools.set(School.objects.all())
    for position, code in enumerate(["PHQ9", "GAD7", "ASQ"]):
        CampaignInstrument.objects.create(
            campaign=campaign, instrument=Instrument.objects.filter(code=code).order_by("version").first(),
            position=position,
        )  # fmt: skip
    students = list(
        Student.objects.filter(status="active", school_class__grade__in=campaign.target_grades).values_list(
            "school__code", "student_no"
        )[: args.rows]
    )
    rng = random.Random(7)
    header = ["学校代码", "学号"] + [f"PHQ9_{n}" for n in range(1, 10)] + [f"GAD7_{n}" for n in range(1, 8)]
    header += [f"ASQ_{n}" for n in range(1, 6)]
    with open(CSV_PATH, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for school, number in students:
            asq = [rng.choices(["否", "是"], [0.96, 0.04])[0] for _ in range(4)]
            writer.writerow(
                [school, number]
                + [rng.choices(range(4), [0.55, 0.25, 0.12, 0.08])[0] for _ in range(16)]
                + asq + ["是" if "是" in asq and rng.random() < 0.2 else ("否" if "是" in asq else "")]
            )  # fmt: skip
    return {"campaign": campaign.pk, "results": len(students)}


def phase_import(args) -> dict:
    from django.db import transaction
    from django.db.models import Max
    from django_q.models import OrmQ

    from screening.models import Campaign, ScreeningResult
    from screening.results_import import ResultsImport, import_results

    campaign = Campaign.objects.get(name=CAMPAIGN_NAME)
    data = CSV_PATH.read_bytes()
    history_before = ScreeningResult.history.filter(campaign_id=campaign.pk).count()
    queue_before = OrmQ.objects.aggregate(last=Max("pk"))["last"] or 0
    marks = {}
    started = time.perf_counter()
    with transaction.atomic():
        # Registered first, so it runs first after commit: the moment the rows are stored, before the signals.
        transaction.on_commit(lambda: marks.setdefault("committed", time.perf_counter()))
        report = import_results(ResultsImport(campaign=campaign, data=data, filename=CSV_PATH.name, dry_run=False))
    finished = time.perf_counter()
    assert not report.refused and not report.error_lines, (report.refused, report.errors[:3])
    return {
        "seconds": finished - started,
        "stored": marks["committed"] - started,
        "signals": finished - marks["committed"],
        "total": report.total,
        "new": report.new,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "history_rows_written": ScreeningResult.history.filter(campaign_id=campaign.pk).count() - history_before,
        "alerts_queued": _drop_queued_alerts(queue_before),
    }


def phase_teardown(args) -> dict:
    _clear()
    return {}


PHASES = {"setup": phase_setup, "import": phase_import, "reimport": phase_import, "teardown": phase_teardown}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--keep", action="store_true", help="leave the benchmark's campaign and results in place")
    parser.add_argument("--phase", choices=list(PHASES))
    args = parser.parse_args()
    if args.phase:
        setup_django(args.database_url)
        result = PHASES[args.phase](args)
        result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return

    def run(phase: str) -> dict:
        command = [sys.executable, __file__, "--phase", phase, "--rows", str(args.rows),
                   "--database-url", args.database_url]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        if done.returncode:
            sys.exit(done.stderr)
        return json.loads(done.stdout.strip().splitlines()[-1])

    setup = run("setup")
    vendor = "postgresql" if args.database_url.startswith("postgres") else "sqlite"
    print(f"machine: {platform.node()} · {os.cpu_count()} cores · Python {platform.python_version()} · {vendor}; "
          f"{setup['results']} results")  # fmt: skip
    for phase in ("import", "reimport"):
        r = run(phase)
        print(
            f"  {phase:<9} {r['seconds']:6.1f} s  {r['total'] / r['seconds']:7.0f} results/s  "
            f"(stored {r['stored']:.1f} s, signals after commit {r['signals']:.1f} s)  new {r['new']} changed "
            f"{r['updated']} unchanged {r['unchanged']}  history {r['history_rows_written']}  red alerts queued "
            f"{r['alerts_queued']}  peak {r['peak_mb']:.0f} MB"
        )
    if not args.keep:
        run("teardown")


if __name__ == "__main__":
    main()
