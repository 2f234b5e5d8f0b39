"""Large exports (issue 18 item 2): a city centre's ledger exports, the time to the first response in the request
before (the whole file written while the person waits) and after (above EXPORT_BACKGROUND_ROWS: the redirect to the
progress page), and the task worker's time to write the file.

On the city benchmarks/reports_bench.py seeds (run it once; `--only nothing` seeds without measuring its pages):

    .venv/bin/python benchmarks/reports_bench.py --database-url sqlite:////tmp/xinqiao-exports-bench.sqlite3 --only x
    .venv/bin/python benchmarks/export_bench.py --database-url sqlite:////tmp/xinqiao-exports-bench.sqlite3

Nothing is left behind: the queued task is removed (no worker runs here; the job is run in this process and timed)
and the job's file deleted. tests/benchmarks/test_export_bench_smoke.py runs a tiny pass.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LEDGERS = ("key_help", "referrals", "closed")


def measure(*, username: str = "city_centre", repeats: int = 3, threshold: int | None = None, stdout=sys.stdout):
    """For each ledger: rows, median ms to the whole file in the request, median ms to the first response with the
    background threshold, and ms the worker takes to write the file."""
    import openpyxl
    from django.conf import settings
    from django.db.models import Max
    from django.test import Client
    from django.test.utils import override_settings
    from django.urls import reverse
    from django_q.models import OrmQ

    from roster import exports
    from roster.models import ExportJob, User

    if "testserver" not in settings.ALLOWED_HOSTS:
        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    client = Client()
    client.force_login(User.objects.get(username=username))
    threshold = settings.EXPORT_BACKGROUND_ROWS if threshold is None else threshold
    results = []
    for name in LEDGERS:
        url = reverse(f"reports:ledger_{name}_xlsx")
        with override_settings(EXPORT_BACKGROUND_ROWS=sys.maxsize):  # before: always in the request
            client.get(url, secure=True)  # warm
            before, size = [], 0
            for _ in range(repeats):
                started = time.perf_counter()
                response = client.get(url, secure=True)
                content = b"".join(response.streaming_content)
                size = len(content)
                before.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, (name, response.status_code)
        rows = sum(1 for _ in openpyxl.load_workbook(io.BytesIO(content), read_only=True).active.iter_rows()) - 1
        after, worker = [], []
        with override_settings(EXPORT_BACKGROUND_ROWS=threshold):
            for _ in range(repeats):
                queued = OrmQ.objects.aggregate(m=Max("pk"))["m"] or 0
                started = time.perf_counter()
                response = client.get(url, secure=True)
                first = (time.perf_counter() - started) * 1000
                if response.status_code == 200:  # under the threshold: the file, as before
                    b"".join(response.streaming_content)
                    after.append((time.perf_counter() - started) * 1000)
                    continue
                assert response.status_code == 302, (name, response.status_code)
                after.append(first)
                OrmQ.objects.filter(pk__gt=queued).delete()  # no worker here: the job is run below, timed
                job = ExportJob.objects.latest("pk")
                started = time.perf_counter()
                job = exports.export_job_run(job.pk)
                worker.append((time.perf_counter() - started) * 1000)
                assert job.total_rows == rows, (name, job.total_rows, rows)  # the same rows as in the request
                job.file.delete(save=False)
                ExportJob.objects.filter(pk=job.pk).delete()
        row = {
            "ledger": name, "rows": rows, "kb": size // 1024, "before_ms": statistics.median(before),
            "after_first_ms": statistics.median(after), "worker_ms": statistics.median(worker) if worker else None,
        }  # fmt: skip
        results.append(row)
        worker_text = f"{row['worker_ms']:8.0f}" if worker else "   (none)"
        line = (f"  {name:10s} {rows:>7} rows {row['kb']:>6} KB  in request {row['before_ms']:8.0f} ms  "
                f"first response {row['after_first_ms']:8.0f} ms  worker {worker_text} ms")  # fmt: skip
        print(line, file=stdout, flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default="sqlite:////tmp/xinqiao-exports-bench.sqlite3")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--user", default="city_centre")
    parser.add_argument("--threshold", type=int, default=None, help="EXPORT_BACKGROUND_ROWS (default: the setting)")
    args = parser.parse_args()
    from benchmarks.reports_bench import machine, setup_django

    setup_django(args.database_url)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    print(f"machine: {machine()}")
    measure(username=args.user, repeats=args.repeats, threshold=args.threshold)


if __name__ == "__main__":
    main()
