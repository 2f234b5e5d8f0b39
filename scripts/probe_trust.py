"""Repeat issue 17's probe (findings 1-6 and 9-11) against a running server, as an attacker would: HTTP requests, in
parallel where the finding is a race. Prints one line per finding: PASS (refused) or FAIL, with the evidence.

The attacks go over HTTP only. The script also reads the database (through Django's ORM, with the server's
environment) to pick targets and to count what changed, and it plays the database owner for finding 10. The data
changes a finding needs (a person with two roles, a campaign's window closed, a school renamed) are made by the
finding itself; those that would disturb a later run are undone after it. Run it on the server's host, on a
throwaway database: it signs in as the demo accounts, spends access codes and emergency-access attempts, takes over
demo accounts (finding 4) and deletes access-log entries (finding 10). The data is the synthetic demo district.

Set-up (PostgreSQL, DEBUG off, no REDIS_URL, so the cache is the database cache that all workers share):

    psql -h 127.0.0.1 -U postgres -c 'create database probe17'
    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/probe17 DEBUG=0 ALLOWED_HOSTS=127.0.0.1,localhost \
        SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_urlsafe(60))') \
        AUDIT_LOG_KEY=$(python3 -c 'import secrets; print(secrets.token_urlsafe(40))') \
        AUDIT_ANCHOR_FILE=/tmp/probe17-anchor.log TWO_FACTOR_ENFORCED=0 \
        SECURE_SSL_REDIRECT=0 SESSION_COOKIE_SECURE=0 CSRF_COOKIE_SECURE=0 SECURE_HSTS_SECONDS=0 \
        EMAIL_BACKEND=django.core.mail.backends.console.EmailBackend
    unset REDIS_URL
    .venv/bin/python manage.py migrate --noinput && .venv/bin/python manage.py load_instruments
    .venv/bin/python manage.py seed_demo --force && .venv/bin/python manage.py seed_screening_demo --force
    .venv/bin/python manage.py seed_case_demo --force
    .venv/bin/gunicorn config.wsgi -w 3 -b 127.0.0.1:8017 > /tmp/probe17-server.log 2>&1 &

(`--force`: the seed commands refuse to run with DEBUG off otherwise. The secure-cookie variables let the probe
speak plain HTTP to 127.0.0.1. The console email backend puts set-password mails in the server's log, where
`--mail-log` lets finding 4 read them as the attacker's own mailbox would.)

Run, in the same environment:

    .venv/bin/python scripts/probe_trust.py --base-url http://127.0.0.1:8017 --mail-log /tmp/probe17-server.log
    .venv/bin/python scripts/probe_trust.py --base-url http://127.0.0.1:8017 --only 2,9

Afterwards: stop gunicorn and `psql -h 127.0.0.1 -U postgres -c 'drop database probe17'`.
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import hmac
import http.cookiejar
import importlib
import io
import json
import os
import random
import re
import secrets
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "demo-pass-2026"  # roster.demo.DEMO_PASSWORD  # noqa: S105
REASON = "学生在走廊说想伤害自己，需要立即查看其个案以便联系心理老师"
RESULTS: list[tuple[str, bool, str]] = []


def report(finding: str, passed: bool, evidence: str) -> None:
    RESULTS.append((finding, passed, evidence))
    print(f"F{finding:<3} {'PASS' if passed else 'FAIL'}  {evidence}", flush=True)


# --- HTTP: a browser without JavaScript -------------------------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Response:
    def __init__(self, status: int, headers, body: bytes):
        self.status, self.headers, self.body = status, headers, body
        self.text = body.decode("utf-8", "replace")
        self.location = headers.get("Location") or ""


class Session:
    base = ""

    def __init__(self):
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect())

    def clone(self) -> Session:
        twin = Session()
        for cookie in self.jar:
            twin.jar.set_cookie(cookie)
        return twin

    def request(self, method: str, path: str, data=None, headers=None) -> Response:
        body = urllib.parse.urlencode(data, doseq=True).encode() if data is not None else None
        headers = {"Referer": self.base + path, **(headers or {})}
        request = urllib.request.Request(self.base + path, data=body, method=method, headers=headers)  # noqa: S310
        try:
            with self.opener.open(request, timeout=180) as answer:  # noqa: S310 (--base-url: http(s) only)
                return Response(answer.status, answer.headers, answer.read())
        except urllib.error.HTTPError as error:
            return Response(error.code, error.headers, error.read())

    def get(self, path: str, **kwargs) -> Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, data: dict, **kwargs) -> Response:
        token = self._csrf() or (self.get(path) and self._csrf())
        return self.request("POST", path, {**data, "csrfmiddlewaretoken": token}, **kwargs)

    def _csrf(self) -> str | None:
        return next((c.value for c in self.jar if c.name.endswith("csrftoken")), None)


def login(username: str, password: str = PASSWORD) -> Session:
    session = Session()
    session.get("/accounts/login/")
    answer = session.post("/accounts/login/", {"username": username, "password": password})
    if answer.status != 302:
        raise RuntimeError(f"cannot sign in as {username}: {answer.status}")
    return session


class _Fields(HTMLParser):
    """What a browser submits from a page's forms (checked boxes, selected options, text)."""

    def __init__(self):
        super().__init__()
        self.data: dict[str, list[str]] = {}
        self._select = self._textarea = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        name = a.get("name")
        if tag == "input" and name and a.get("type", "text") not in ("submit", "button", "file", "image"):
            if a.get("type") in ("checkbox", "radio"):
                if "checked" in a:
                    self.data.setdefault(name, []).append(a.get("value") or "on")
            else:
                self.data[name] = [a.get("value") or ""]
        elif tag == "select" and name:
            self._select, self.data[name] = name, []
        elif tag == "option" and self._select and "selected" in a:
            self.data[self._select].append(a.get("value") or "")
        elif tag == "textarea" and name:
            self._textarea, self.data[name] = name, [""]

    def handle_endtag(self, tag):
        self._select = None if tag == "select" else self._select
        self._textarea = None if tag == "textarea" else self._textarea

    def handle_data(self, data):
        if self._textarea:
            self.data[self._textarea][0] += data


def form_fields(html: str) -> dict[str, list[str]]:
    parser = _Fields()
    parser.feed(html)
    skip = ("csrfmiddlewaretoken", "language", "next")
    return {k: v for k, v in parser.data.items() if k not in skip and "__prefix__" not in k}


def tables(html: str) -> list[list[list[str]]]:
    def cell(text: str) -> str:
        return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text)).strip().replace("&lt;", "<")

    return [
        [
            [cell(c) for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", tr, re.S)]
            for tr in re.findall(r"<tr.*?</tr>", t, re.S)
        ]
        for t in re.findall(r"<table.*?</table>", html, re.S)
    ]


def number(text: str) -> int | None:
    head = text.split()[0] if text.split() else ""
    return int(head) if head.isdigit() else None


def totp(secret: str) -> str:
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", int(time.time() // 30)), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    return f"{(struct.unpack('>I', digest[offset : offset + 4])[0] & 0x7FFFFFFF) % 1_000_000:06d}"


# --- The database: targets, evidence, set-up --------------------------------------------------------------------------


def django_setup() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


def log_since(mark: int, **filters):
    from roster.models import AccessLogEntry

    return AccessLogEntry.objects.filter(pk__gt=mark, **filters)


def log_mark() -> int:
    from roster.models import AccessLogEntry

    return AccessLogEntry.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def person(username: str, grants=()):
    """A synthetic staff account with the demo password and these (role, node) grants, made once."""
    from roster import services
    from roster.models import User

    user = User.objects.filter(username=username).first()
    if user is None:
        user = services.staff_create(username=username, name="探针测试", password=PASSWORD)
        for role, node in grants:
            services.role_grant(actor=None, user=user, role=role, node=node)
    return user


def demo_places():
    from roster.demo import DISTRICTS
    from roster.models import District, School

    districts = [District.objects.get(division_code=code) for _name, code in DISTRICTS]
    schools = [School.objects.filter(district=d).order_by("code") for d in districts]
    return districts, schools


def process_of(case):
    from workflows.models import CaseProcess

    return CaseProcess.objects.filter(case=case).order_by("-pk").values_list("pk", flat=True).first()


# --- The findings -----------------------------------------------------------------------------------------------------


def finding_1() -> None:
    """An auditor of district 1 who is principal of a school in district 2 changes a case of district 1."""
    from viewflow.workflow.models import Task

    from cases.models import Case, CaseStatus, ParentContact
    from roster.roles import Role
    from workflows.models import CaseProcess

    districts, schools = demo_places()
    person("probe17_auditor_principal", [(Role.DISTRICT_AUDITOR, districts[0]), (Role.PRINCIPAL, schools[1][0])])
    in_district = Case.objects.filter(school__district=districts[0], processes__isnull=False).order_by("pk")
    closed = in_district.filter(status=CaseStatus.CLOSED).first()
    opened = in_district.filter(status=CaseStatus.OPEN, processes__task__status="NEW").first()
    task = Task.objects.filter(process_id=process_of(opened), status="NEW").first()
    before = {c.pk: (c.status, ParentContact.objects.filter(case=c).count()) for c in (closed, opened)}
    processes = CaseProcess.objects.count()
    s, mark = login("probe17_auditor_principal"), log_mark()
    contact = {"guardian": "家长", "channel": "phone", "outcome": "探针", "consent": "refused"}
    attempts = [
        (closed, "reopen/", {"reason": "probe"}),
        (closed, "parent-contacts/new/", contact),
        (opened, "parent-contacts/new/", contact),
        (opened, "support/new/", {"reason": "probe"}),
        (opened, "coordination/new/", {"agency": "probe"}),
    ]
    reads = {c.pk: s.get(f"/work/case/{process_of(c)}/").status for c in (closed, opened)}
    codes = [s.post(f"/work/case/{process_of(c)}/{path}", data).status for c, path, data in attempts]
    assign = s.post(f"/work/case/{task.process_id}/{task.flow_task.name}/{task.pk}/assign/", {}).status
    task.refresh_from_db()
    after = {c.pk: (c.status, ParentContact.objects.filter(case=c).count()) for c in Case.objects.filter(pk__in=before)}
    denied = log_since(mark, actor="probe17_auditor_principal", action="change", outcome="denied").count()
    changed = log_since(mark, actor="probe17_auditor_principal", action="change", outcome="ok").count()
    ok = set(codes) == {404} and after == before and CaseProcess.objects.count() == processes and not changed
    ok = ok and denied >= len(attempts) and task.owner_id is None
    report(
        "1",
        ok,
        f"case pages read {reads} (the auditor may read); POSTs reopen/parent contact/support/coordination "
        f"-> {codes}; take its {task.flow_task.name} task -> {assign}, owner now {task.owner_id}; case status and "
        f"parent contacts {before} -> {after}; access log: {denied} 'change denied', {changed} 'change ok'",
    )


def _attempts_left(user) -> int:
    from django.conf import settings
    from django.utils import timezone

    from roster.models import AccessLogEntry

    used = AccessLogEntry.objects.filter(
        actor_id=user.pk, object_type="cases.emergencyaccess", at__gte=timezone.now() - timezone.timedelta(hours=24)
    ).count()
    return settings.EMERGENCY_ACCESS_DAILY_LIMIT - used


def finding_2() -> None:
    """Emergency access: the school must be named, a wrong school is refused, the daily limit holds in parallel."""
    from django.conf import settings
    from django.db.models import Count

    from cases.models import Case, EmergencyAccess
    from roster.models import Student, User
    from roster.roles import Role

    districts, schools = demo_places()
    requester = User.objects.get(username="principal")
    if _attempts_left(requester) < 2:  # the demo principal's five a day are spent: a colleague asks instead
        requester = person(f"probe17_principal_{secrets.token_hex(3)}", [(Role.PRINCIPAL, schools[0][0])])
    shared = (
        Student.objects.values("student_no")
        .annotate(n=Count("school", distinct=True))
        .filter(n__gte=3)
        .values_list("student_no", flat=True)
    )
    case = Case.objects.filter(student__student_no__in=shared).exclude(school__district=districts[0]).first()
    number = case.student.student_no
    wrong = Student.objects.filter(student_no=number, cases__isnull=True).exclude(school=case.school).first().school
    s = login(requester.username)
    page, grants = "/work/case/emergency-access/", EmergencyAccess.objects.filter(user=requester)
    before = grants.count()
    no_school = s.post(page, {"student_no": number, "reason": REASON})
    wrong_school = s.post(page, {"school": wrong.pk, "student_no": number, "reason": REASON})
    refused = grants.count() == before
    right = s.post(page, {"school": case.school_id, "student_no": number, "reason": REASON})
    granted = grants.filter(case=case).exists()
    change = s.post(
        f"/work/case/{process_of(case)}/parent-contacts/new/",
        {"guardian": "x", "channel": "phone", "outcome": "x", "consent": "refused"},
    )
    # Twelve parallel requests for twelve students, by someone who has asked nothing today.
    racer = person(f"probe17_glass_{secrets.token_hex(3)}", [(Role.PRINCIPAL, schools[2][1])])
    numbers = list(Case.objects.filter(school=schools[0][0]).values_list("student__student_no", flat=True)[:12])
    base = login(racer.username)
    base.get(page)
    start = threading.Barrier(len(numbers))

    def attempt(student_no: str) -> int:
        twin = base.clone()
        start.wait()
        return twin.post(page, {"school": schools[0][0].pk, "student_no": student_no, "reason": REASON}).status

    with ThreadPoolExecutor(len(numbers)) as pool:
        codes = Counter(pool.map(attempt, numbers))
    raced = EmergencyAccess.objects.filter(user=racer).count()
    limit = settings.EMERGENCY_ACCESS_DAILY_LIMIT
    ok = no_school.status == 200 and refused and right.status == 302 and granted and change.status == 404
    ok = ok and raced <= limit and codes[302] <= limit
    report(
        "2",
        ok,
        f"{requester.username} asks for {number} ({Student.objects.filter(student_no=number).count()} "
        f"schools have it): no school -> {no_school.status} form error, {wrong} -> {wrong_school.status}, "
        f"no grant: {refused}; {case.school} -> {right.status}, granted: {granted}, read only (parent "
        f"contact -> {change.status}); 12 parallel requests by {racer.username} -> HTTP {dict(codes)}, "
        f"{raced} grants (limit {limit})",
    )


def _export(s: Session, model: str = "roster/student") -> list[list[str]]:
    form = s.get(f"/admin/{model}/export/").text
    options = re.findall(r'<option value="(\d+)">([^<]*)', form)
    formats = {label.strip().lower(): value for value, label in options}
    fields = dict.fromkeys(re.findall(r'name="(studentresource_\w+)"', form), "on")
    answer = s.post(f"/admin/{model}/export/", {"format": formats.get("csv", "1"), "resource": "0", **fields})
    return list(csv.reader(io.StringIO(answer.body.decode("utf-8-sig"))))


def finding_3() -> None:
    """City and district admins export students and open a change page: masked names, no guardians or phones."""
    from roster.models import Student

    real = {(s.school.code, s.student_no): s.name for s in Student.objects.select_related("school")}
    lines = []
    ok = True
    for username in ("city_admin", "district_admin"):
        s, mark = login(username), log_mark()
        rows = _export(s)
        head, body = rows[0], rows[1:]
        full = sum(1 for r in body if real.get((r[0], r[3])) == r[4])
        filled = {head[i]: sum(1 for r in body if r[i].strip()) for i in range(6, 10)}
        logged = log_since(mark, actor=username, action="export", object_type="roster.student").count()
        ok = ok and body and not full and not any(filled.values()) and logged
        lines.append(f"{username}: {len(body)} rows, {full} full names, filled {filled}, export logged {logged}x")
    student = Student.objects.exclude(guardian_phone="").filter(special_groups__isnull=False).first()
    secrets_shown = [
        student.name,
        student.guardian_name,
        student.guardian_phone,
        student.birth_date.isoformat(),
        *student.special_groups.values_list("name", flat=True),
    ]
    s = login("city_admin")
    pages = {p: s.get(f"/admin/roster/student/{student.pk}/{p}") for p in ("change/", "history/")}
    leaks = {p: [x for x in secrets_shown if x and x in r.text] for p, r in pages.items()}
    ok = ok and not any(leaks.values()) and all(r.status == 200 for r in pages.values())
    school_rows = _export(login("school_admin"))[1:]  # the control: the school's own admin gets names
    control = sum(1 for r in school_rows if real.get((r[0], r[3])) == r[4])
    report(
        "3",
        bool(ok),
        "; ".join(lines) + f"; city_admin's change/history pages of student {student.pk}: "
        f"{ {p: r.status for p, r in pages.items()} } showing {leaks}; control: school_admin's "
        f"export has {control}/{len(school_rows)} full names",
    )


def _mail_link(mail_log: str, offset: int, address: str) -> str | None:
    with open(mail_log, encoding="utf-8", errors="replace") as log:
        log.seek(offset)
        text = log.read()
    start = text.rfind(f"To: {address}")
    found = re.search(r"https?://\S+(/accounts/password/set/\S+/)", text[start:]) if start >= 0 else None
    return found.group(1) if found else None


def _enrol_second_factor(admin: Session, victim, victim_session: Session) -> str:
    """The school admin issues the victim's authenticator enrolment code; the attacker enrols their own app."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    page = admin.post(
        "/admin/roster/user/",
        {"action": "issue_otp_enrolment_codes_action", "_selected_action": [victim.pk], "index": "0"},
    )
    code = re.search(r"\b([A-Z2-9]{4} [A-Z2-9]{4} [A-Z2-9]{4})\b", page.text)
    if code is None:
        return "no enrolment code issued to the admin"
    victim_session.post("/accounts/otp/setup/", {"code": code.group(1)})
    page = victim_session.get("/accounts/otp/setup/").text
    secret = re.search(r'class="otp-secret">([A-Z2-7 ]+)<', page) or re.search(r"secret=([A-Z2-7]+)", page)
    if secret:
        victim_session.post("/accounts/otp/setup/", {"token": totp(secret.group(1).replace(" ", ""))})
    enrolled = TOTPDevice.objects.filter(user=victim, confirmed=True).exists()
    return f"the admin was shown its enrolment code, the attacker's authenticator enrolled: {enrolled}"


def _signed_in_as(username: str, password: str, new_password: str) -> Session | None:
    """Sign in; choose a password of one's own if the server asks for it. None if refused."""
    try:
        s = login(username, password)
    except RuntimeError:
        return None
    if s.get("/work/case/inbox/").location.startswith("/accounts/password/change/"):
        s.post(
            "/accounts/password/change/",
            {"old_password": password, "new_password1": new_password, "new_password2": new_password},
        )
    return s if s.get("/work/case/inbox/").status == 200 else None


def finding_4(mail_log: str | None) -> None:
    """A school admin tries to become the school's principal or psychology teacher."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from roster import services
    from roster.models import RoleAssignment, User
    from roster.roles import TWO_FACTOR_ROLES, Role

    principal, counselor = User.objects.get(username="principal"), User.objects.get(username="counselor")
    school = RoleAssignment.objects.get(user=principal, role=Role.PRINCIPAL).school
    admin, mark = login("school_admin"), log_mark()
    typed = {"password1": "Probe-Takeover-2026!x", "password2": "Probe-Takeover-2026!x", "set_password": "1"}
    offered = {
        u.username: "password1" in admin.get(f"/admin/roster/user/{u.pk}/password/").text
        for u in (principal, counselor)
    }
    forged = {
        u.username: admin.post(f"/admin/roster/user/{u.pk}/password/", typed).status for u in (principal, counselor)
    }
    unchanged = all(User.objects.get(pk=u.pk).check_password(PASSWORD) for u in (principal, counselor))
    denied = log_since(mark, actor="school_admin", object_type="roster.user.password", outcome="denied").count()
    report(
        "4",
        not any(offered.values()) and set(forged.values()) == {403} and unchanged and denied >= 2,
        f"password page offers a typed password: {offered}; forged POST -> {forged}; passwords unchanged: "
        f"{unchanged}; access log 'change denied roster.user.password': {denied}",
    )

    # 4b: an account without an email address: its administrator may add one, their own, and send the link there.
    holders = User.objects.filter(role_assignments__role__in=TWO_FACTOR_ROLES, role_assignments__school=school)
    victim = holders.filter(email="").exclude(pk=counselor.pk).distinct().first()
    login(victim.username)  # an account in use (one never signed in takes the address its administrator gives it)
    address = f"probe-attacker-{secrets.token_hex(2)}@example.test"
    offset = os.path.getsize(mail_log) if mail_log else 0
    url = f"/admin/roster/user/{victim.pk}/change/"
    admin.post(url, {**form_fields(admin.get(url).text), "email": address})
    sent = admin.post(f"/admin/roster/user/{victim.pk}/password/", {"send_link": "1"}).status
    redirected = (
        User.objects.get(pk=victim.pk).email == address
        and log_since(mark, object_type="roster.user.password_link", outcome="ok", object_ids=str(victim.pk)).exists()
    )
    evidence = f"{victim.username} had no email; admin set it to {address} and sent the link: {redirected} ({sent})"
    time.sleep(1)
    link = _mail_link(mail_log, offset, address) if mail_log and redirected else None
    if link:
        thief = Session()
        landing = thief.get(link).location or link
        thief.get(landing)
        thief.post(landing, {"new_password1": "Probe-Owned-Account-77", "new_password2": "Probe-Owned-Account-77"})
        taken = _signed_in_as(victim.username, "Probe-Owned-Account-77", "Probe-Owned-Account-78")
        evidence += f"; the attacker followed it, chose a password, inbox as {victim.username}: {taken is not None}"
        if taken is not None:
            evidence += "; " + _enrol_second_factor(admin, victim, taken)
    elif redirected and not mail_log:
        evidence += " (give --mail-log to follow the link)"
    report("4b", not redirected, evidence)

    # 4c: take the role away, set a typed password, give the role back, sign in.
    url = f"/admin/roster/user/{counselor.pk}/change/"
    fields = form_fields(admin.get(url).text)
    row = next(k[: -len("-role")] for k, v in fields.items() if k.endswith("-role") and v == [Role.PSYCHOLOGY_TEACHER])
    admin.post(url, {**fields, f"{row}-DELETE": "on"})
    typed_now = "password1" in admin.get(f"/admin/roster/user/{counselor.pk}/password/").text
    admin.post(f"/admin/roster/user/{counselor.pk}/password/", typed)
    fields = form_fields(admin.get(url).text)
    n = int(fields["role_assignments-TOTAL_FORMS"][0])
    admin.post(
        url,
        {
            **fields,
            "role_assignments-TOTAL_FORMS": n + 1,
            f"role_assignments-{n}-user": counselor.pk,
            f"role_assignments-{n}-role": Role.PSYCHOLOGY_TEACHER,
            f"role_assignments-{n}-school": school.pk,
        },
    )
    regranted = RoleAssignment.objects.filter(user=counselor, role=Role.PSYCHOLOGY_TEACHER).exists()
    taken = _signed_in_as("counselor", typed["password1"], "Probe-Owned-Counselor-55")
    report(
        "4c",
        taken is None,
        f"psychology teacher role removed -> password page offers a typed password: {typed_now}; admin typed "
        f"one; role granted again: {regranted}; signed in as counselor with it, own password chosen, inbox: "
        f"{taken is not None}",
    )

    for user in (victim, counselor):  # put the demo accounts back
        user.refresh_from_db()
        user.email, user.must_change_password = "", False
        user.set_password(PASSWORD)
        user.save()
        TOTPDevice.objects.filter(user=user).delete()
    if not RoleAssignment.objects.filter(user=counselor, role=Role.PSYCHOLOGY_TEACHER).exists():
        services.role_grant(actor=None, user=counselor, role=Role.PSYCHOLOGY_TEACHER, node=school)


def _portal_answer(code: str, red: bool) -> int:
    s = Session()
    s.get("/s/")
    token = form_fields(s.post("/s/", {"code": code}).text)["token"][0]
    page = s.get(s.post("/s/confirm/", {"choice": "yes", "token": token}).location).text  # post/redirect/get
    options: dict[str, list[str]] = {}
    for name, value in re.findall(r'<input[^>]*type="radio"[^>]*name="([^"]+)"[^>]*value="([^"]*)"', page):
        options.setdefault(name, []).append(value)
    pick = {n: ("yes" if "yes" in v else v[-1]) if red else ("no" if "no" in v else v[0]) for n, v in options.items()}
    return s.post("/s/answer/", {"token": token, **pick}).status


def finding_5() -> None:
    """The homeroom teacher's proctor JSON: done / not yet / keep while live; nothing per student afterwards."""
    from django.utils import timezone

    from roster.models import RoleAssignment
    from roster.roles import Role
    from screening.models import Campaign

    school_class = RoleAssignment.objects.get(user__username="homeroom", role=Role.HOMEROOM_TEACHER).school_class
    campaign = Campaign.objects.filter(schools=school_class.school, closes_at__gt=timezone.now()).first()
    slips = login("school_admin").get(f"/admin-tools/access-slips/?classes={school_class.pk}").text
    codes = re.findall(r'class="code">([^<]+)<', slips)
    _clear_portal_counts()  # a wrong-code limit left by finding 9 would turn the student away
    answered = _portal_answer(codes[0], red=True) if codes else None  # a student screens red now
    s = login("homeroom")
    url = f"/screening/campaigns/{campaign.pk}/classes/{school_class.pk}/proctor/"
    live = s.get(url + "status.json")
    students = json.loads(live.text)["students"]
    statuses = Counter(row["status"] for row in students)
    keys = sorted(set().union(*(row.keys() for row in students)))
    closes_at = campaign.closes_at
    campaign.closes_at = timezone.now() - timezone.timedelta(minutes=1)
    campaign.save(update_fields=["closes_at"])
    try:
        ended, page = s.get(url + "status.json"), s.get(url)
    finally:
        campaign.closes_at = closes_at
        campaign.save(update_fields=["closes_at"])
    numbers = re.findall(r"\b20\d{8}\b", page.text)
    ok = (
        live.status == 200 and set(statuses) <= {"done", "not_yet", "keep"} and keys == ["name", "status", "student_no"]
    )
    ok = ok and ended.status == 410 and '"students"' not in ended.text and "status" not in ended.text and not numbers
    report(
        "5",
        ok,
        f"portal answer (red) -> {answered}; live status.json {live.status}: statuses {dict(statuses)}, "
        f"keys {keys}; after closes_at: status.json {ended.status} {ended.text[-40:]!r}, proctor page "
        f"{page.status} with {len(numbers)} student numbers",
    )


def _special_groups(report_tables):
    """(the main table's totals row, the special-groups table's rows) of a report page."""
    groups = next((t for t in reversed(report_tables) if t and len(t[0]) == 6), [])
    return report_tables[0][-1], groups[1:]


def finding_6() -> None:
    """A class where a special group has one completed student, who is red: no cell may tell."""
    from roster.models import SchoolClass
    from screening.models import ScreeningResult

    campaign = ScreeningResult.objects.values_list("campaign_id", flat=True).first()
    members: dict[tuple[int, str], list[str]] = {}
    results = ScreeningResult.objects.filter(campaign_id=campaign).select_related("student")
    results = results.prefetch_related("student__special_groups")
    for result in results:
        for group in result.student.special_groups.all():
            members.setdefault((result.student.school_class_id, group.name), []).append(result.tier)
    lone = [key for key, tiers in members.items() if tiers == ["red"]]
    if not lone:
        report("6", True, "SKIPPED: no class has a special group whose one completed student is red")
        return
    s = login("city_centre")
    shown = []
    for class_id, group in lone:
        _total, groups = _special_groups(
            tables(s.get(f"/screening/campaigns/{campaign}/report/?class={class_id}").text)
        )
        row = next(r for r in groups if r[0] == group)
        completed, green, yellow, orange, red = (number(c) for c in row[1:6])
        if (red or 0) > 0 or None not in (completed, green, yellow, orange):
            shown.append((class_id, row))
    report(
        "6",
        not shown,
        f"{len(lone)} classes where a special group's one completed student is red; group rows "
        f"that show or give away the red: {shown or 'none'} (every cell '<5')",
    )
    # 6b: the students in some special group are the node less its "in no special group" row: subtract the tables.
    classes = SchoolClass.objects.filter(pk__in={c for c, _g in members}).select_related("school")
    nodes = {f"?class={k.pk}": f"{k.school} {k}" for k in classes}
    nodes.update({f"?school={k.school_id}&grade={k.grade}": f"{k.school} grade {k.grade}" for k in classes})
    derived = []
    for query, label in nodes.items():
        total, groups = _special_groups(tables(s.get(f"/screening/campaigns/{campaign}/report/{query}").text))
        if groups:
            t, n = [number(c) for c in total[3:4] + total[5:9]], [number(c) for c in groups[-1][1:6]]
            d = [a - b if a is not None and b is not None else None for a, b in zip(t, n, strict=True)]
            small = [x for x in d[1:] if x is not None and 0 < x < 5]
            if small:
                derived.append((min(small), f"{label}: total {t} - in none {n} = {d}"))
    examples = [text for _n, text in sorted(derived)[:3]]
    report(
        "6b",
        not derived,
        f"{len(derived)} of {len(nodes)} class and grade reports where the total less the 'in no special group' row "
        f"gives 1-4 special-group students of one tier (completed,G,Y,O,R), e.g.: {examples}",
    )


def _clear_portal_counts() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM xinqiao_cache WHERE cache_key LIKE %s", ["%portal-failed:%"])


def finding_9(threads: int) -> None:
    """400 random access codes from one address, in parallel over the workers: the first 429 at ~60."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    rng = random.Random(17)  # noqa: S311 (wrong codes, not secrets)
    codes = [" ".join("".join(rng.choice(alphabet) for _ in range(4)) for _ in range(2)) for _ in range(400)]
    _clear_portal_counts()  # a previous run's ten minutes
    base = Session()
    base.get("/s/")

    def attempt(code: str) -> tuple[float, int]:
        status = base.clone().post("/s/", {"code": code}).status
        return time.monotonic(), status

    try:
        with ThreadPoolExecutor(threads) as pool:
            answers = sorted(pool.map(attempt, codes))
        spoofed = base.clone().post("/s/", {"code": codes[0]}, headers={"X-Forwarded-For": "10.1.2.3"}).status
    finally:
        _clear_portal_counts()  # the address may use the portal again (finding 5)
    statuses = Counter(status for _at, status in answers)
    first = next((i + 1 for i, (_at, status) in enumerate(answers) if status == 429), None)
    report(
        "9",
        first is not None and statuses[200] <= 60 + threads and spoofed == 429,
        f"{len(codes)} codes, {threads} at a time: {dict(statuses)}; first 429 at answer #{first}; codes checked "
        f"{statuses[200]} (limit 60 + up to {threads} in flight); with a forged X-Forwarded-For -> {spoofed}",
    )


class _RolledBack(Exception):
    pass


def _verify(anchor_file: Path) -> tuple[int, str]:
    done = subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", "verify_audit_log", "--anchor-file", str(anchor_file)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [line for line in (done.stdout + done.stderr).splitlines() if "ccess log" in line]
    return done.returncode, lines[-1] if lines else (done.stdout + done.stderr).strip()[-300:]


def finding_10() -> None:
    """The database owner drops the triggers, deletes the newest entries and checkpoint; verify_audit_log must tell."""
    from django.db import DatabaseError, connection, transaction
    from django.test import override_settings

    from roster import audit
    from roster.models import AuditCheckpoint

    migration = importlib.import_module("roster.migrations.0005_access_log")
    anchor = Path(tempfile.mkdtemp(prefix="probe17-")) / "audit-anchor.log"  # this run's copy of the worker's file
    with override_settings(AUDIT_ANCHOR_FILE=str(anchor)):
        audit.record_head()  # the daily checkpoint (and its anchor line)
        login("homeroom").get("/notifications/")  # entries after it
        audit.record_anchor()  # the five-minute anchor
    baseline = _verify(anchor)
    checkpoint = AuditCheckpoint.objects.order_by("-pk").first()
    try:
        with connection.cursor() as cursor:
            for table in migration.TABLES:
                for statement in migration.drop_sql("postgresql", table):
                    cursor.execute(statement)
            cursor.execute("DELETE FROM roster_accesslogentry WHERE id > %s", [checkpoint.entry_id - 2])
            deleted = cursor.rowcount
            cursor.execute("DELETE FROM roster_auditcheckpoint WHERE id = %s", [checkpoint.pk])
        after = _verify(anchor)
        login("homeroom").get("/notifications/")  # the server writes on, chained to the cut head
        later = _verify(anchor)
    finally:
        with connection.cursor() as cursor:
            for table in migration.TABLES:
                for statement in migration.triggers_sql("postgresql", table):
                    cursor.execute(statement)
    try:  # the owner's DELETE again, rolled back whatever happens
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("DELETE FROM roster_accesslogentry WHERE id = (SELECT max(id) FROM roster_accesslogentry)")
            raise _RolledBack
    except _RolledBack:
        restored = False
    except DatabaseError:  # the trigger's refusal
        restored = True
    ok = baseline[0] == 0 and after[0] != 0 and later[0] != 0 and "anchor" in after[1] and "anchor" in later[1]
    report(
        "10",
        ok,
        f"baseline exit {baseline[0]} ({baseline[1][:70]}); deleted {deleted} newest entries and "
        f"checkpoint {checkpoint.pk}: exit {after[0]} {after[1]!r}; after more traffic: exit {later[0]} "
        f"{later[1][-90:]!r}; triggers back: {restored}",
    )


def finding_11() -> None:
    """`$x^2$` in a school's and a campaign's name: every report of the district still answers 200."""
    from roster.models import Student
    from screening.models import Campaign, ScreeningResult

    _districts, schools = demo_places()
    school = schools[0][1]
    campaign = Campaign.objects.filter(schools=school).first()
    names = (school.name, campaign.name)
    tag = secrets.token_hex(2)  # new labels each run: the chart cache holds drawings by their labels
    school.name, campaign.name = f"{names[0]}$x^2${tag}", f"{names[1]} $x^2$ $x_$ {tag}"
    school.save(update_fields=["name"])
    campaign.save(update_fields=["name"])
    student = Student.objects.filter(pk__in=ScreeningResult.objects.filter(student__school=school).values("student"))[0]
    c, k = campaign.pk, student.school_class_id
    paths = [f"/screening/campaigns/{c}/report/{q}" for q in ("", f"?school={school.pk}", f"?class={k}")] + [
        f"/screening/campaigns/{c}/report/print/?school={school.pk}",
        f"/screening/campaigns/{c}/report.xlsx",
        f"/screening/campaigns/{c}/report.pdf?school={school.pk}",
        f"/screening/campaigns/{c}/flagged/",
        "/screening/campaigns/",
        "/reports/dashboard/",
        f"/reports/dashboard/?school={school.pk}",
        f"/reports/students/{student.pk}/",
        f"/reports/students/{student.pk}/report.pdf",
        "/work/case/chart/",
    ]
    try:
        s = login("district_centre")
        answers = {p: s.get(p) for p in paths}
    finally:
        school.name, campaign.name = names
        school.save(update_fields=["name"])
        campaign.save(update_fields=["name"])
    bad = {p: r.status for p, r in answers.items() if r.status >= 400}
    plain = "$x^2$" in answers[paths[1]].text and "<svg" in answers[paths[1]].text
    report(
        "11",
        not bad,
        f"{len(paths)} report pages, charts and PDFs with '$x^2$'/'$x_$' in the names: "
        f"{dict(Counter(r.status for r in answers.values()))}; failing: {bad or 'none'}; the name "
        f"printed as plain text on the school report: {plain}",
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--base-url", required=True, help="the server, e.g. http://127.0.0.1:8017")
    parser.add_argument("--only", default="1,2,3,4,5,6,9,10,11", help="findings to run, e.g. 2,9")
    parser.add_argument("--mail-log", help="the server's console output, where set-password mails appear (finding 4)")
    parser.add_argument("--threads", type=int, default=8, help="parallel requests for finding 9 (default 8)")
    args = parser.parse_args()
    if not args.base_url.startswith(("http://", "https://")):
        parser.error("--base-url must be an http:// or https:// address")
    Session.base = args.base_url.rstrip("/")
    django_setup()
    runs = {
        "1": finding_1,
        "2": finding_2,
        "3": finding_3,
        "4": lambda: finding_4(args.mail_log),
        "5": finding_5,
        "6": finding_6,
        "9": lambda: finding_9(args.threads),
        "10": finding_10,
        "11": finding_11,
    }
    for key in args.only.split(","):
        try:
            runs[key.strip()]()
        except Exception as error:  # one finding's crash is its result; the others still run
            report(key.strip(), False, f"probe crashed: {type(error).__name__}: {error}")
    failed = [f for f, passed, _e in RESULTS if not passed]
    print(f"\n{len(RESULTS) - len(failed)} passed, {len(failed)} failed{': ' + ', '.join(failed) if failed else ''}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
