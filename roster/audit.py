"""The access log: every read, list and export of a child's records, every refusal, every sign-in and sign-out
(PIPL art. 28; China's rules for minors' data: 记录访问情况), so that a district auditor can answer "who saw or
changed this child's record, and when".

- Written synchronously and fail-closed: `record()` raises when the entry cannot be written, and a page calls it
  before it shows anything, so a record whose reading is not logged is not shown.
- Append-only: database triggers refuse UPDATE and DELETE of `roster_accesslogentry` (migration 0005).
- Hash-chained: each entry's HMAC-SHA256 covers its fields and the previous entry's HMAC, keyed by
  settings.AUDIT_LOG_KEY (outside the database). Writers take one lock (a PostgreSQL advisory lock; SQLite
  serialises writers itself), so concurrent requests never fork or gap the chain. `verify()` (and
  `manage.py verify_audit_log`) recomputes the chain and names the first broken entry; the task worker records the
  head hash daily (`record_head`), so a rewrite of the whole chain behind a checkpoint shows too.
- Anchored outside the database: every five minutes the task worker appends the head, its id and the entry count,
  signed, to settings.AUDIT_ANCHOR_FILE and to its own log (`record_anchor`). Whoever owns the database can drop the
  triggers and delete the newest entries and the checkpoints; `verify()` still finds what an anchor line recorded.
- Entries carry ids, never names, answers or notes. Lives in roster, the bottom layer, so every app can write it.
May import: nothing above roster.
"""

from __future__ import annotations

import contextvars
import hashlib
import hmac
import json
import logging
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from roster.client_ip import client_ip
from roster.models import AccessAction, AccessLogEntry, AccessOutcome, AuditCheckpoint

logger = logging.getLogger(__name__)

GENESIS = "0" * 64
_PG_LOCK = 0x58514C4F47  # pg_advisory_xact_lock key of the chain's head
FIELDS = ("at", "actor_id", "actor", "roles", "action", "outcome", "object_type", "object_ids", "ip", "user_agent",
          "request_id")  # fmt: skip
_request: contextvars.ContextVar = contextvars.ContextVar("audit_request", default=None)


class AuditWriteFailed(Exception):
    """The access log could not be written: whatever the entry was for must not happen."""


# --- The chain ----------------------------------------------------------------------------------------------------


def _key() -> bytes:
    secret = getattr(settings, "AUDIT_LOG_KEY", "") or settings.SECRET_KEY
    return hashlib.sha256(b"xinqiao access log\x00" + secret.encode()).digest()


def _canonical(value):
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    return None if value is None else str(value)


def entry_hash(prev_hash: str, fields: dict) -> str:
    payload = json.dumps([prev_hash, *(_canonical(fields[name]) for name in FIELDS)], ensure_ascii=False)
    return hmac.new(_key(), payload.encode(), hashlib.sha256).hexdigest()


def _append(fields: dict) -> AccessLogEntry:
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_PG_LOCK])
        head = AccessLogEntry.objects.order_by("-pk").values_list("hash", flat=True).first() or GENESIS
        entry = AccessLogEntry(**fields, prev_hash=head, hash=entry_hash(head, fields))
        entry.save(force_insert=True)
    return entry


# --- Writing ------------------------------------------------------------------------------------------------------


def _roles(user) -> str:
    from roster.scoping import scope_for

    scope = scope_for(user)
    held = [f"{h.role}@{h.level}:{h.node_id}" for h in scope.held]
    return ", ".join(["superuser", *held] if scope.unrestricted else held)[:300]


def record(action: str, *, object_type: str = "", object_ids: Iterable = (), outcome: str = AccessOutcome.OK,
           user=None, request=None, actor_name: str = "") -> AccessLogEntry:  # fmt: skip
    """Append one entry. `request` defaults to the current one (AuditRequestMiddleware); `user` to its user.
    Raises AuditWriteFailed when the entry cannot be written (the caller then shows nothing)."""
    request = request if request is not None else _request.get()
    if user is None and request is not None:
        user = getattr(request, "user", None)
    known = user is not None and getattr(user, "is_authenticated", False)
    fields = {
        "at": timezone.now(),
        "actor_id": user.pk if known else None,
        "actor": (user.get_username() if known else actor_name)[:150],
        "roles": _roles(user) if known else "",
        "action": AccessAction(action).value,
        "outcome": AccessOutcome(outcome).value,
        "object_type": object_type,
        "object_ids": ",".join(str(i) for i in object_ids),
        "ip": client_ip(request),  # behind settings.TRUSTED_PROXY_COUNT proxies
        "user_agent": (request.META.get("HTTP_USER_AGENT", "") if request is not None else "")[:300],
        "request_id": getattr(request, "audit_id", "") if request is not None else "",
    }
    try:
        entry = _append(fields)
    except Exception as error:  # fail closed: the caller must not go on
        logger.error("access log write failed: %s %s", action, object_type)
        raise AuditWriteFailed(str(error)) from error
    if request is not None:
        request.audit_entries = getattr(request, "audit_entries", 0) + 1
        request.__dict__.pop("audit_deferred", None)  # this entry says what the request did
    return entry


def defer(action: str, *, object_type: str, object_ids: Iterable) -> None:
    """An entry for the current request written when it ends, unless an entry recorded meanwhile says what the
    request did instead: a POST reads a case to change it, and the log keeps one entry with the outcome the change
    had (ok or denied), not a read beside it. Without a request, recorded at once."""
    request = _request.get()
    if request is None:
        record(action, object_type=object_type, object_ids=object_ids)
        return
    request.audit_deferred = {"action": action, "object_type": object_type, "object_ids": list(object_ids)}


def label(model) -> str:
    """The object type written for a model: its app label and model name, e.g. "cases.case"."""
    return model._meta.label_lower


class AuditRequestMiddleware:
    """Gives each request an id and makes it the current one for `record()` (and for the log lines of a request).
    A signed-in request refused (403) by a page that wrote nothing itself (the admin's or the case site's door, which
    turn away roles that never enter) is logged here, so every refusal leaves one entry."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.audit_id = uuid.uuid4().hex
        token = _request.set(request)
        try:
            response = self.get_response(request)
            deferred = request.__dict__.pop("audit_deferred", None)
            if deferred is not None:
                record(request=request, **deferred)
            user = getattr(request, "user", None)
            signed_in = user is not None and user.is_authenticated
            if response.status_code == 403 and signed_in and not getattr(request, "audit_entries", 0):
                action = AccessAction.VIEW if request.method in ("GET", "HEAD") else AccessAction.CHANGE
                record(action, object_type="request", outcome=AccessOutcome.DENIED, request=request)
            return response
        finally:
            _request.reset(token)


def on_logged_in(sender, request, user, **kwargs):
    record(AccessAction.LOGIN, user=user, request=request)


def on_logged_out(sender, request, user, **kwargs):
    if user is not None:
        record(AccessAction.LOGOUT, user=user, request=request)


def on_login_failed(sender, credentials, request=None, **kwargs):
    # The name typed is kept (it may be nobody's); the password never is.
    record(AccessAction.LOGIN_FAILED, outcome=AccessOutcome.DENIED, request=request,
           actor_name=str(credentials.get("username", ""))[:150])  # fmt: skip


# --- Checking -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    entries: int
    broken_at: int | None = None  # the first entry whose hash or link does not hold
    reason: str = ""
    anchors: int | None = None  # anchor lines checked; None: no anchor file to check against
    anchor_file: str = ""
    anchor_line: int | None = None  # the anchor file's line that the database contradicts, or that is not signed

    @property
    def ok(self) -> bool:
        return self.broken_at is None and self.anchor_line is None


def verify(anchor_file: str | Path | None = None, anchored_until: datetime | None = None) -> Verdict:
    """Recompute the whole chain in order and hold it against the database checkpoints and the anchor file
    (settings.AUDIT_ANCHOR_FILE, or `anchor_file`: a copy, or a worker log; with `anchored_until`, only the lines
    written until then, e.g. to check a restored backup): the first thing that does not hold, and why."""
    path = Path(anchor_file) if anchor_file else anchor_path()
    anchors, unsigned = read_anchors(path) if path is not None and path.exists() else (None, [])
    if anchors is not None and anchored_until is not None:
        anchors = [a for a in anchors if datetime.fromisoformat(a.at) <= anchored_until]
    pending = sorted(anchors or [], key=lambda a: (a.entry_id, a.line))
    found = {"anchors": None if anchors is None else len(anchors), "anchor_file": str(path or "")}
    previous, count, contradiction = GENESIS, 0, None
    hashes_at: dict[int, str] = {}
    checkpoints = dict(AuditCheckpoint.objects.values_list("entry_id", "hash"))
    for entry in AccessLogEntry.objects.order_by("pk").iterator(chunk_size=2000):
        count += 1
        if entry.prev_hash != previous:
            return Verdict(count, entry.pk, "its link to the previous entry is broken (an entry removed or inserted)",
                           **found)  # fmt: skip
        if entry.hash != entry_hash(entry.prev_hash, {name: getattr(entry, name) for name in FIELDS}):
            return Verdict(count, entry.pk, "its content does not match its hash (the entry was changed)", **found)
        if entry.pk in checkpoints:
            hashes_at[entry.pk] = entry.hash
        while pending and pending[0].entry_id <= entry.pk:
            anchor = pending.pop(0)
            contradiction = contradiction or _contradiction(anchor, entry, count)
        previous = entry.hash
    for entry_id, recorded in checkpoints.items():
        if hashes_at.get(entry_id) != recorded:
            return Verdict(count, entry_id, "the chain differs from the checkpoint recorded for this entry", **found)
    if contradiction is None and pending:  # anchored entries past the database's newest
        gone = pending[0]
        contradiction = gone, f"it records entry {gone.entry_id}, newer than the database's newest (entries deleted)"
    if contradiction is not None:
        anchor, reason = contradiction
        return Verdict(count, anchor.entry_id, f"{reason}; anchored at {anchor.at}", anchor_line=anchor.line, **found)
    if unsigned:
        return Verdict(count, None, "the line is not signed with the audit key (forged or damaged)",
                       anchor_line=unsigned[0], **found)  # fmt: skip
    return Verdict(count, **found)


def _contradiction(anchor, entry, count: int) -> tuple | None:
    if anchor.entry_id < entry.pk:
        return anchor, f"it records entry {anchor.entry_id}, which the database no longer has (entries deleted)"
    if anchor.hash != entry.hash:
        return anchor, f"it records another hash for entry {anchor.entry_id} (the chain was rewritten)"
    if anchor.entries != count:
        change = "deleted" if count < anchor.entries else "inserted"
        return anchor, (f"it records {anchor.entries} entries up to entry {anchor.entry_id}, the database has "
                        f"{count} (entries {change})")  # fmt: skip
    return None


def record_head() -> str:
    """The daily django-q2 task: remember the head of the chain, in the database and in the anchor file."""
    head = AccessLogEntry.objects.order_by("-pk").values("pk", "hash").first()
    if head is None:
        return "empty"
    AuditCheckpoint.objects.create(at=timezone.now(), entry_id=head["pk"], hash=head["hash"])
    if anchor_path() is not None:
        _anchor(anchor_path(), head)
    return f"{head['pk']}:{head['hash'][:12]}"


# --- The anchor: the head, out of the database's reach ------------------------------------------------------------

ANCHOR_MARK = "access log anchor "  # before each anchor line in the worker's log


@dataclass(frozen=True)
class Anchor:
    line: int  # in its file, from 1
    at: str  # ISO time, UTC
    entry_id: int  # the head
    entries: int  # entries up to and including the head
    hash: str  # the head's hash


def anchor_path() -> Path | None:
    configured = getattr(settings, "AUDIT_ANCHOR_FILE", "")
    return Path(configured) if configured else None


def _anchor_signature(fields: dict) -> str:
    secret = getattr(settings, "AUDIT_LOG_KEY", "") or settings.SECRET_KEY
    key = hashlib.sha256(b"xinqiao access log anchor\x00" + secret.encode()).digest()
    payload = json.dumps([fields["at"], fields["entry_id"], fields["entries"], fields["hash"]])
    return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()


def _parse_anchor(number: int, line: str) -> Anchor | None | bool:
    """An anchor line (the file's, or the worker log's after ANCHOR_MARK): the Anchor if signed, None if not; False
    for any other line (of a log)."""
    _, marked, rest = line.partition(ANCHOR_MARK)
    text = (rest if marked else line).strip()
    if not text.startswith("{"):
        return False
    try:
        fields = json.loads(text)
        if hmac.compare_digest(str(fields["sig"]), _anchor_signature(fields)):
            return Anchor(number, str(fields["at"]), int(fields["entry_id"]), int(fields["entries"]), fields["hash"])
    except (ValueError, KeyError, TypeError):
        pass
    return None


def read_anchors(path: Path) -> tuple[list[Anchor], list[int]]:
    """The signed anchor lines of a file, and the numbers of the lines that look like anchors but are not signed."""
    anchors, unsigned = [], []
    with open(path, encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, 1):
            parsed = _parse_anchor(number, line)
            if parsed is None:
                unsigned.append(number)
            elif parsed is not False:
                anchors.append(parsed)
    return anchors, unsigned


def _last_anchor(path: Path) -> Anchor | None:
    # Read from the end: the file grows by a line every five minutes.
    try:
        with open(path, "rb") as file:
            file.seek(max(0, file.seek(0, os.SEEK_END) - 4096))
            tail = file.read().decode("utf-8", errors="replace").strip().splitlines()
    except FileNotFoundError:
        return None
    parsed = _parse_anchor(0, tail[-1]) if tail else None
    return parsed or None


def record_anchor() -> str:
    """The django-q2 task every five minutes: append the head of the chain to the anchor file and the worker's log.
    Cheap: the entries since the previous anchor are counted, not the whole log."""
    path = anchor_path()
    head = AccessLogEntry.objects.order_by("-pk").values("pk", "hash").first()
    if path is None or head is None:
        return "no anchor file" if path is None else "empty"
    return _anchor(path, head)


def _anchor(path: Path, head: dict) -> str:
    last = _last_anchor(path)
    entries = AccessLogEntry.objects.filter(pk__lte=head["pk"])
    if last is not None and last.entry_id <= head["pk"]:
        if AccessLogEntry.objects.filter(pk=last.entry_id).values_list("hash", flat=True).first() != last.hash:
            logger.error("access log entry %s, anchored at %s, is gone or changed: run verify_audit_log",
                         last.entry_id, last.at)  # fmt: skip
        count = last.entries + entries.filter(pk__gt=last.entry_id).count()
    else:
        if last is not None:
            logger.error("access log head went back from anchored entry %s to %s: run verify_audit_log",
                         last.entry_id, head["pk"])  # fmt: skip
        count = entries.count()
    fields = {"at": timezone.now().astimezone(UTC).isoformat(timespec="seconds"), "entry_id": head["pk"],
              "entries": count, "hash": head["hash"]}  # fmt: skip
    line = json.dumps({**fields, "sig": _anchor_signature(fields)})
    path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(descriptor, f"{line}\n".encode())
    finally:
        os.close(descriptor)
    logger.info("%s%s", ANCHOR_MARK, line)  # ids, a count and hashes only
    return f"{head['pk']}:{head['hash'][:12]}"


# --- Auditors only read ---------------------------------------------------------------------------------------------

# What an auditor may still post: signing out, the language, the second factor of their sign-in, their own password.
# The admin site is left to its own permissions (read-only for auditors, answered 403 or 404 as tests/security's
# matrix pins down).
AUDITOR_POSTS = ("/accounts/logout/", "/accounts/otp/", "/accounts/password/", "/i18n/", "/admin/")


class ReadOnlyAuditorsMiddleware:
    """A district auditor reviews and never changes: every POST (PUT, DELETE…) by someone whose only roles are
    auditing is refused (404, as anything out of reach) and logged, whatever page it aims at."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        writing = request.method not in ("GET", "HEAD", "OPTIONS") and not request.path.startswith(AUDITOR_POSTS)
        if writing and auditor_only(request.user):
            from django.http import Http404

            # Refused like anything else out of reach: as missing (the access matrix's rule), and logged.
            record(AccessAction.CHANGE, object_type="request", outcome=AccessOutcome.DENIED, request=request)
            raise Http404
        return self.get_response(request)


def auditor_only(user) -> bool:
    from roster.roles import Role
    from roster.scoping import scope_for

    scope = scope_for(user)
    return bool(scope.roles) and not scope.unrestricted and scope.roles <= {Role.DISTRICT_AUDITOR}
