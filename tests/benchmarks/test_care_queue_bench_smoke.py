"""A tiny pass of benchmarks/care_queue_bench.py, so the script keeps working; the figures come from a run by hand (see
the script's docstring)."""

import io

from benchmarks.care_queue_bench import PAGES, measure, seed


def test_the_care_queue_benchmark_loads_the_queue_pages_with_constant_queries(db):
    made = seed(schools=8, signals=600, open_signals=200, students_per_school=5, stdout=io.StringIO())

    results = measure(repeats=2, stdout=io.StringIO())

    assert made["signals"] == 600 and len(results) == len(PAGES)
    by_page = {r["page"]: r for r in results}
    teacher, centre = by_page["queue, psychology teacher (waiting)"], by_page["queue, district centre (waiting)"]
    assert teacher["total"] == 25 and centre["total"] == 50  # the first school's, the first district's open ones
    assert centre["rows"] == 50  # a page
    # The same number of queries whatever the rows shown: one count per page, and the same across pages of a user.
    assert all(len(r["queries"]) == 1 for r in results)
    assert by_page["queue, district centre (waiting, page 3)"]["queries"] == centre["queries"]
