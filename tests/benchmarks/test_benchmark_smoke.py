"""A smoke-size pass of benchmarks/run.py, so the script keeps working; the real figures come from `make bench`."""

import io

from benchmarks.run import PAGES, measure


def test_the_benchmark_runs_every_page_at_smoke_size(db):
    results = measure(students_per_class=1, repeats=1, stdout=io.StringIO())
    assert [row["page"] for row in results] == [what for _, _, what in PAGES]
    assert all(len(row["queries"]) == 1 for row in results)
