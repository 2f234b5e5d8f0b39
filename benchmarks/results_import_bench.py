"""Results import at city scale: 100,000 results (PHQ-9 + GAD-7 + ASQ) scored, tiered and stored, then re-imported.

    .venv/bin/python benchmarks/results_import_bench.py --database-url postgres://postgres@127.0.0.1:5432/xinqiao_bench

Needs a database holding ~100,000 active students (run benchmarks/import_bench.py against it first). Creates a
campaign over every school, writes a CSV of random answers for up to --rows students, imports it twice.
"""

import argparse
import csv
import datetime
import io
import os
import platform
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.utils import timezone

    from roster.models import School, Student, User
    from screening.models import Campaign, CampaignInstrument, Instrument, RuleSet, ScreeningResult
    from screening.results_import import ResultsImport, import_results

    call_command("migrate", verbosity=0)
    call_command("load_instruments", stdout=io.StringIO())
    ScreeningResult.objects.all().delete()
    ScreeningResult.history.all().delete()  # after the rows: deleting them writes "deleted" history records
    Campaign.objects.all().delete()
    campaign = Campaign.objects.create(
        name="bench", school_year="2026-2027", term="autumn", ruleset=RuleSet.objects.get(code="adolescent-default"),
        opens_at=timezone.now() - datetime.timedelta(days=1), closes_at=timezone.now() + datetime.timedelta(days=1),
        created_by=User.objects.order_by("pk").first(),
    )  # fmt: skip
    campaign.schools.set(School.objects.all())
    for position, code in enumerate(["PHQ9", "GAD7", "ASQ"]):
        CampaignInstrument.objects.create(
            campaign=campaign, instrument=Instrument.objects.get(code=code), position=position
        )
    students = list(
        Student.objects.filter(status="active", school_class__grade__in=campaign.target_grades).values_list(
            "school__code", "student_no"
        )[: args.rows]
    )
    rng = random.Random(7)
    header = ["学校代码", "学号"] + [f"PHQ9_{n}" for n in range(1, 10)] + [f"GAD7_{n}" for n in range(1, 8)]
    header += [f"ASQ_{n}" for n in range(1, 6)]
    path = Path(tempfile.gettempdir()) / "results-bench.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for school, number in students:
            asq = [rng.choices(["否", "是"], [0.96, 0.04])[0] for _ in range(4)]
            writer.writerow(
                [school, number]
                + [rng.choices(range(4), [0.55, 0.25, 0.12, 0.08])[0] for _ in range(16)]
                + asq + ["是" if "是" in asq and rng.random() < 0.2 else ("否" if "是" in asq else "")]
            )  # fmt: skip
    data = path.read_bytes()
    print(f"machine: {platform.node()} · {os.cpu_count()} cores · Python {platform.python_version()} · "
          f"{args.database_url.split(':')[0]}; {len(students)} results")  # fmt: skip
    for label in ("import", "re-import"):
        started = time.perf_counter()
        report = import_results(ResultsImport(campaign=campaign, data=data, filename=path.name, dry_run=False))
        seconds = time.perf_counter() - started
        assert not report.refused and not report.error_lines, (report.refused, report.errors[:3])
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"  {label:<9} {seconds:6.1f} s  {report.total / seconds:8.0f} results/s  new {report.new} "
              f"changed {report.updated} unchanged {report.unchanged}  peak {peak:.0f} MB")  # fmt: skip
    tiers = ScreeningResult.objects.values_list("tier").annotate(n=django.db.models.Count("pk")).order_by("tier")
    print("  history rows:", ScreeningResult.history.count(), " tiers:", dict(tiers))


if __name__ == "__main__":
    main()
