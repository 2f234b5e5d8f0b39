"""The access log under concurrent writers: 200 writer threads append entries at once; afterwards the chain must be
whole (every entry links to the one before, no fork, no gap) and `verify_audit_log` must pass.

    .venv/bin/python benchmarks/audit_chain_bench.py --database-url postgres://postgres@127.0.0.1:5432/xinqiao_audit
    .venv/bin/python benchmarks/audit_chain_bench.py --database-url sqlite:////tmp/xinqiao-audit.sqlite3

The database is migrated and its access log emptied first (the append-only triggers are lifted for that, as the
test suite does). A writer holds a database connection only while it writes one entry, at most --connections at a
time (PostgreSQL's default max_connections is 100), so all --writers threads interleave their entries.
"""

import argparse
import os
import platform
import secrets
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ["DEBUG"] = "0"
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.setdefault("AUDIT_LOG_KEY", secrets.token_urlsafe(32))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="sqlite:////tmp/xinqiao-audit.sqlite3")
    parser.add_argument("--writers", type=int, default=200)
    parser.add_argument("--entries", type=int, default=5, help="entries each writer appends")
    parser.add_argument("--connections", type=int, default=80)
    args = parser.parse_args()
    setup_django(args.database_url)

    from importlib import import_module

    from django.core.management import call_command
    from django.db import connection

    from roster import audit
    from roster.models import AccessLogEntry

    call_command("migrate", verbosity=0)
    migration = import_module("roster.migrations.0005_access_log")  # its triggers refuse DELETE: lifted to empty
    with connection.cursor() as cursor:
        for table in migration.TABLES:
            for statement in migration.drop_sql(connection.vendor, table):
                cursor.execute(statement)
            cursor.execute(f"DELETE FROM {table}")  # noqa: S608 (the migration's own table names)
            for statement in migration.triggers_sql(connection.vendor, table):
                cursor.execute(statement)
    connection.close()
    slots = threading.BoundedSemaphore(args.connections)
    latencies: list[float] = []
    errors: list[BaseException] = []
    start_line = threading.Barrier(args.writers)

    def writer(n: int) -> None:
        start_line.wait()  # every writer starts together
        for i in range(args.entries):
            with slots:
                try:
                    t0 = time.perf_counter()
                    audit.record("view", object_type="cases.case", object_ids=[n * 1000 + i], actor_name=f"bench-{n}")
                    latencies.append((time.perf_counter() - t0) * 1000)
                except Exception as error:  # noqa: BLE001 (reported below)
                    errors.append(error)
                finally:
                    connection.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(args.writers)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started

    rows = list(AccessLogEntry.objects.order_by("pk").values_list("prev_hash", "hash"))
    expected = args.writers * args.entries
    linked = all(rows[i][0] == rows[i - 1][1] for i in range(1, len(rows)))
    verdict = audit.verify()
    print(f"machine: {platform.node()} · {os.cpu_count()} cores · {platform.python_version()} · {connection.vendor}")
    print(f"writers {args.writers} × {args.entries} entries, at most {args.connections} connections at once")
    print(f"entries: {len(rows)} of {expected}; errors: {len(errors)} {errors[:1]}")
    print(f"chain: linked={linked} forks={len(rows) - len({r[0] for r in rows})} verify={verdict}")
    print(f"time {elapsed:.2f} s · {len(rows) / elapsed:.0f} entries/s · write latency median "
          f"{statistics.median(latencies):.1f} ms, p95 {statistics.quantiles(latencies, n=20)[18]:.1f} ms")  # fmt: skip
    if errors or len(rows) != expected or not linked or not verdict.ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
