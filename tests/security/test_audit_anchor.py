"""The access log's anchor: the head of the chain and the entry count, written every five minutes by the task worker
to a file (and its log) the database's owner cannot rewrite. Whoever drops the append-only triggers and deletes the
newest entries and the database checkpoint is still caught by `verify_audit_log`."""

import io
import json
import logging
from datetime import timedelta
from importlib import import_module
from types import SimpleNamespace

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone
from django_q.models import Schedule

from roster import audit
from roster.models import AccessLogEntry, AuditCheckpoint


@pytest.fixture
def anchor_file(settings, tmp_path):
    settings.AUDIT_ANCHOR_FILE = str(tmp_path / "var" / "audit-anchor.log")
    return tmp_path / "var" / "audit-anchor.log"


def write(n, world):
    for i in range(n):
        audit.record("view", object_type="cases.case", object_ids=[i], user=world.counselor_a1)


def as_the_database_owner(*statements):
    """Drop the append-only triggers, run the statements, put the triggers back."""
    migration = import_module("roster.migrations.0005_access_log")
    with connection.cursor() as cursor:
        for table in migration.TABLES:
            for statement in migration.drop_sql(connection.vendor, table):
                cursor.execute(statement)
        for sql, params in statements:
            cursor.execute(sql, params)
        for table in migration.TABLES:
            for statement in migration.triggers_sql(connection.vendor, table):
                cursor.execute(statement)


def delete_newest_and_checkpoints(keep: int):
    newest = list(AccessLogEntry.objects.order_by("pk").values_list("pk", flat=True))[keep:]
    as_the_database_owner(
        *[("DELETE FROM roster_accesslogentry WHERE id = %s", [pk]) for pk in newest],
        ("DELETE FROM roster_auditcheckpoint", []),
    )


def verify_output(**options) -> str:
    out = io.StringIO()
    call_command("verify_audit_log", stdout=out, stderr=out, **options)
    return out.getvalue()


def test_an_untouched_log_agrees_with_its_anchor_lines(world, anchor_file):
    write(3, world)
    audit.record_anchor()
    write(2, world)
    audit.record_head()  # the daily checkpoint anchors too
    lines = [json.loads(line) for line in anchor_file.read_text().splitlines()]
    newest = AccessLogEntry.objects.latest("pk")
    assert [(line["entry_id"], line["entries"]) for line in lines][-1] == (newest.pk, 5)
    assert lines[-1]["hash"] == newest.hash
    assert "5 entries, chain, checkpoints and 2 anchor lines" in verify_output()
    # The task worker runs it every five minutes.
    schedule = Schedule.objects.get(func="roster.audit.record_anchor")
    assert (schedule.schedule_type, schedule.minutes, schedule.repeats) == (Schedule.MINUTES, 5, -1)


def test_deleting_the_newest_entries_and_the_checkpoint_is_caught_by_the_anchor(world, anchor_file):
    write(3, world)
    audit.record_anchor()
    write(2, world)
    audit.record_head()
    delete_newest_and_checkpoints(keep=3)
    assert AccessLogEntry.objects.count() == 3 and not AuditCheckpoint.objects.exists()
    assert audit.verify(anchor_file="/nonexistent").ok  # the chain alone looks whole
    verdict = audit.verify()
    assert (verdict.ok, verdict.anchor_line) == (False, 2)
    with pytest.raises(CommandError, match=rf"anchor file {anchor_file}, line 2: .*entries deleted"):
        call_command("verify_audit_log")


def test_the_next_anchor_reports_an_anchored_head_that_is_gone(world, anchor_file, caplog):
    write(4, world)
    audit.record_anchor()
    delete_newest_and_checkpoints(keep=2)
    with caplog.at_level(logging.INFO, logger="roster.audit"):
        audit.record_anchor()
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors and "run verify_audit_log" in errors[0]
    with pytest.raises(CommandError, match="line 1: it records entry"):
        call_command("verify_audit_log")


def test_the_worker_log_carries_the_anchor_lines_and_can_be_checked_against(world, anchor_file, caplog, tmp_path):
    write(3, world)
    with caplog.at_level(logging.INFO, logger="roster.audit"):
        audit.record_anchor()
    (logged,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith(audit.ANCHOR_MARK)]
    head = AccessLogEntry.objects.latest("pk")
    assert head.hash in logged and world.counselor_a1.username not in logged  # ids and hashes, no person
    # A copy of the worker's log, shipped off the host: the anchor lines among others.
    shipped = tmp_path / "worker.log"
    shipped.write_text(f"2026-12-07 08:00:00 INFO django_q started\n2026-12-07 08:05:00 INFO roster.audit {logged}\n")
    anchor_file.unlink()  # the local file is gone too
    delete_newest_and_checkpoints(keep=2)
    with pytest.raises(CommandError, match=r"worker.log, line 2: it records entry"):
        call_command("verify_audit_log", anchor_file=str(shipped))


def test_a_forged_anchor_line_is_reported(world, anchor_file):
    write(2, world)
    audit.record_anchor()
    real = json.loads(anchor_file.read_text())
    with anchor_file.open("a") as file:  # a line claiming fewer entries, without the audit key
        file.write(json.dumps({**real, "entries": 1}) + "\n")
    with pytest.raises(CommandError, match=r"line 2: the line is not signed with the audit key"):
        call_command("verify_audit_log")


def test_a_restored_backup_is_checked_against_the_anchor_lines_until_its_time(world, anchor_file, monkeypatch):
    write(2, world)
    audit.record_anchor()
    backup_time = timezone.now()
    write(2, world)
    later = backup_time + timedelta(minutes=5)
    monkeypatch.setattr(audit, "timezone", SimpleNamespace(now=lambda: later))
    audit.record_anchor()
    delete_newest_and_checkpoints(keep=2)  # what a restore of the backup taken between the two anchors holds
    with pytest.raises(CommandError, match="line 2"):
        call_command("verify_audit_log")
    assert "1 anchor lines" in verify_output(anchored_until=backup_time + timedelta(seconds=1))


def test_without_an_anchor_file_verify_says_so(world, anchor_file):
    write(1, world)
    assert "No anchor file at" in verify_output()
