"""A tiny pass of benchmarks/group_ledger_bench.py, so the script keeps working; the figures come from a run by hand
(see the script's docstring)."""

import io

from benchmarks.group_ledger_bench import measure, seed
from cases.models import HelpRecord


def test_the_group_ledger_benchmark_seeds_a_city_and_measures_every_page(db):
    made = seed(students=800, schools=4, stdout=io.StringIO())
    assert made["schools"] == 4 and made["students"] == 800
    assert made["memberships"] > 0 and HelpRecord.objects.count() == made["records"] > 0

    results = measure(repeats=1, stdout=io.StringIO())

    assert len(results) == 10 and all(len(r["queries"]) == 1 for r in results)
    xlsx = [r for r in results if "XLSX" in r["page"]]
    assert len(xlsx) == 2 and all(r["kb"] > 0 for r in xlsx)
