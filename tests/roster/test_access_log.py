"""The access log: append-only in the database, hash-chained, checked by `verify_audit_log`, written for every
sign-in and every read or refusal of a case, and fail-closed."""

import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, IntegrityError, connection, transaction

from roster import audit
from roster.models import AccessLogEntry, AuditCheckpoint

PG_ONLY = pytest.mark.postgres_only


def entries(**filters):
    return list(AccessLogEntry.objects.filter(**filters).order_by("pk"))


def write(n, world):
    for i in range(n):
        audit.record("view", object_type="cases.case", object_ids=[i], user=world.counselor_a1)


def tamper(sql, params):
    """What someone with the database's own rights could do: drop the guard and change a row."""
    from importlib import import_module

    migration = import_module("roster.migrations.0005_access_log")
    with connection.cursor() as cursor:
        for statement in migration.drop_sql(connection.vendor, "roster_accesslogentry"):
            cursor.execute(statement)
        cursor.execute(sql, params)
        for statement in migration.triggers_sql(connection.vendor, "roster_accesslogentry"):
            cursor.execute(statement)


def test_entries_chain_and_verify(world):
    write(5, world)
    rows = entries()
    assert [r.prev_hash for r in rows[1:]] == [r.hash for r in rows[:-1]] and rows[0].prev_hash == audit.GENESIS
    assert rows[0].actor == "counselor_a1" and "psychology_teacher@school" in rows[0].roles
    assert audit.verify().ok
    call_command("verify_audit_log")


@pytest.mark.parametrize("change", ["update", "delete"])
def test_the_database_refuses_changes_through_the_orm_and_raw_sql(world, change):
    write(2, world)
    entry = AccessLogEntry.objects.first()
    with pytest.raises((DatabaseError, IntegrityError)), transaction.atomic():
        if change == "update":
            AccessLogEntry.objects.filter(pk=entry.pk).update(object_ids="999")
        else:
            entry.delete()
    with pytest.raises((DatabaseError, IntegrityError)), transaction.atomic(), connection.cursor() as cursor:
        verb = (
            "UPDATE roster_accesslogentry SET actor = 'x'"
            if change == "update"
            else "DELETE FROM roster_accesslogentry"
        )
        cursor.execute(f"{verb} WHERE id = %s", [entry.pk])
    assert AccessLogEntry.objects.get(pk=entry.pk).object_ids == entry.object_ids


def test_a_row_changed_behind_the_guard_is_named_by_verify(world):
    write(6, world)
    third = entries()[2]
    tamper("UPDATE roster_accesslogentry SET object_ids = %s WHERE id = %s", ["42", third.pk])
    verdict = audit.verify()
    assert (verdict.broken_at, "changed" in verdict.reason) == (third.pk, True)
    with pytest.raises(CommandError, match=f"entry {third.pk}"):
        call_command("verify_audit_log")


def test_a_removed_row_breaks_the_link_of_the_next(world):
    write(4, world)
    second, third = entries()[1:3]
    tamper("DELETE FROM roster_accesslogentry WHERE id = %s", [second.pk])
    assert audit.verify().broken_at == third.pk


def test_a_rewritten_chain_differs_from_its_daily_checkpoint(world, settings):
    write(3, world)
    assert audit.record_head().startswith(str(entries()[-1].pk))
    assert AuditCheckpoint.objects.count() == 1 and audit.verify().ok
    # Rewriting every hash consistently needs the key; with another key the checkpoint still gives it away.
    settings.AUDIT_LOG_KEY = "a key the attacker chose"
    previous = audit.GENESIS
    for row in entries():
        fields = {name: getattr(row, name) for name in audit.FIELDS}
        new = audit.entry_hash(previous, fields)
        tamper("UPDATE roster_accesslogentry SET prev_hash = %s, hash = %s WHERE id = %s", [previous, new, row.pk])
        previous = new
    verdict = audit.verify()
    assert verdict.broken_at == entries()[-1].pk and "checkpoint" in verdict.reason


def test_sign_in_sign_out_and_failed_sign_in_are_logged(client, world):
    world.counselor_a1.set_password("a long enough passphrase 2026")
    world.counselor_a1.save()
    client.post("/accounts/login/", {"username": "counselor_a1", "password": "wrong"})
    client.post("/accounts/login/", {"username": "counselor_a1", "password": "a long enough passphrase 2026"})
    client.post("/accounts/logout/")
    rows = entries()
    assert [(r.action, r.outcome, r.actor) for r in rows] == [
        ("login_failed", "denied", "counselor_a1"), ("login", "ok", "counselor_a1"), ("logout", "ok", "counselor_a1"),
    ]  # fmt: skip
    assert all(r.ip == "127.0.0.1" and r.request_id for r in rows)
    assert "wrong" not in " ".join(str(vars(r)) for r in rows)  # never the password


def test_reading_a_case_is_logged_and_a_refusal_too(client, world, open_case):
    from roster.roles import Role
    from tests.factories.roster import staff_with_role
    from workflows.flows import CaseFlow

    case, process = open_case(world.student_a1_3, "yellow")
    page = CaseFlow.instance.reverse("process_detail", args=[process.pk])
    client.force_login(world.counselor_a1)
    assert client.get(page).status_code == 200
    (read,) = entries(action="view")
    assert (read.object_type, read.object_ids, read.outcome, read.actor) == ("cases.case", str(case.pk), "ok",
                                                                             "counselor_a1")  # fmt: skip
    client.force_login(staff_with_role(Role.PSYCHOLOGY_TEACHER, world.school_b1, username="counselor_b1"))
    assert client.get(page).status_code == 404
    refused = entries(action="view")[-1]
    # Logged against the case the page would show (cases.access), so the case's audit review lists the refusal too.
    assert (refused.object_type, refused.outcome, refused.actor, refused.object_ids) == (
        "cases.case", "denied", "counselor_b1", str(case.pk)
    )  # fmt: skip
    assert audit.verify().ok


def test_a_case_whose_reading_cannot_be_logged_is_not_shown(client, world, open_case):
    from workflows.flows import CaseFlow

    case, process = open_case(world.student_a1_3, "yellow")
    client.force_login(world.counselor_a1)
    with connection.cursor() as cursor:  # the log's table is gone (rolled back with the test)
        cursor.execute("ALTER TABLE roster_accesslogentry RENAME TO roster_accesslogentry_gone")
    with pytest.raises(audit.AuditWriteFailed):
        client.get(CaseFlow.instance.reverse("process_detail", args=[process.pk]))


@PG_ONLY
@pytest.mark.django_db(transaction=True)
def test_200_concurrent_writers_leave_one_unbroken_chain(world):
    errors = []

    def writer(n):
        try:
            for i in range(5):
                audit.record("view", object_type="cases.case", object_ids=[n * 10 + i], user=world.counselor_a1)
        except Exception as error:  # noqa: BLE001 (collected and asserted below)
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    rows = entries()
    assert len(rows) == 200
    assert len({r.prev_hash for r in rows}) == 200  # no fork: every entry follows a different one
    assert audit.verify().ok
