"""Emptying a benchmark's database: `manage.py flush`, with the access log's append-only triggers (migration
roster 0005, which refuse DELETE and TRUNCATE on SQLite and PostgreSQL) lifted around it and put back, as the test
suite does around a transactional test's flush. Only for scratch databases that a benchmark fills itself."""

from importlib import import_module


def flush_database() -> None:
    from django.core.management import call_command
    from django.db import connection

    migration = import_module("roster.migrations.0005_access_log")

    def run(statements) -> None:
        with connection.cursor() as cursor:
            for table in migration.TABLES:
                for statement in statements(connection.vendor, table):
                    cursor.execute(statement)

    run(migration.drop_sql)
    try:
        call_command("flush", interactive=False, verbosity=0)
    finally:
        run(migration.triggers_sql)
