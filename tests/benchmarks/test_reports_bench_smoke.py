"""A tiny pass of benchmarks/reports_bench.py (seeding and measuring), so the script keeps working as pages land;
the figures come from the full-size run on PostgreSQL (see the script's docstring)."""

import io

from benchmarks.reports_bench import PAGES, measure, seed


def test_the_reports_benchmark_seeds_a_city_and_every_page_answers(db):
    made = seed(students=300, cases=40, stdout=io.StringIO())
    assert made["exemplars"] + made["copies"] == 40

    results = measure(repeats=1, warm=False, stdout=io.StringIO())  # asserts a 200 for every request

    assert [row["page"] for row in results] == [what for _, _, what in PAGES]
