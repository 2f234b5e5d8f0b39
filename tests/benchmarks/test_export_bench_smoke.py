"""A tiny pass of benchmarks/export_bench.py on reports_bench's city, so the script keeps working; the figures come
from a run by hand (see the script's docstring)."""

import io

from benchmarks.export_bench import LEDGERS, measure
from benchmarks.reports_bench import seed
from roster.models import ExportJob


def test_the_export_benchmark_times_each_ledger_in_the_request_and_in_the_worker(db, settings, tmp_path):
    settings.EXPORT_ROOT = str(tmp_path)
    seed(students=300, cases=40, stdout=io.StringIO())

    results = measure(repeats=1, threshold=1, stdout=io.StringIO())

    assert [row["ledger"] for row in results] == list(LEDGERS)
    assert all(row["worker_ms"] is not None and row["rows"] > 1 for row in results)
    assert not ExportJob.objects.exists() and not list(tmp_path.rglob("*.xlsx"))
