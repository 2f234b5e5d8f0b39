"""Student portal load test: students answering through gunicorn + PostgreSQL, as in production, on loopback.

    .venv/bin/python benchmarks/portal_load.py --database-url postgres://postgres@127.0.0.1:5432/xinqiao_portal

Each virtual student walks the real pages: GET /s/ (CSRF cookie), POST the code, POST "yes, this is me", POST the
answers (302 to the thank-you page), GET the thank-you page. Students run closed-loop (each starts the next student
as soon as one finishes) for --warmup seconds, then for --duration seconds that are measured. Afterwards the
database is counted: every 302 must be exactly one stored result and one used code, and nothing else written.

The database is created if missing and emptied first (migrate, flush, instruments, the demo district at
--students-per-class, one open campaign over every school, one code per student).
"""

import argparse
import http.client
import multiprocessing
import os
import platform
import random
import re
import secrets
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
HOST, PORT = "127.0.0.1", 8765
TOKEN = re.compile(rb'name="token" value="([^"]+)"')
CSRF = re.compile(rb'name="csrfmiddlewaretoken" value="([^"]+)"')
STEPS = ("start", "code", "confirm", "questions", "answer", "done")


def setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def create_database(database_url: str) -> None:
    import psycopg

    parts = urllib.parse.urlparse(database_url)
    name = parts.path.lstrip("/")
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def prepare(args) -> list[str]:
    import datetime
    import importlib
    import io

    from django.apps import apps
    from django.core.management import call_command
    from django.utils import timezone

    from benchmarks.emptying import flush_database

    call_command("migrate", verbosity=0)
    flush_database()
    importlib.import_module("roster.migrations.0002_special_groups").load(apps, None)
    call_command("load_instruments", stdout=io.StringIO())
    call_command("seed_demo", students_per_class=args.students_per_class, force=True, stdout=io.StringIO())

    from roster.access_codes import access_codes_issue
    from roster.models import School, Student, User
    from screening.campaigns import campaign_create
    from screening.models import Instrument, RuleSet

    actor = User.objects.get(username="city_admin")
    now = timezone.now()
    campaign = campaign_create(
        actor=actor, name="压力测试", school_year="2026-2027", term="autumn",
        instruments=[Instrument.objects.get(code=c) for c in ("PHQ9", "GAD7", "ASQ")],
        ruleset=RuleSet.objects.get(code="adolescent-default"), target_grades=[4, 5, 6, 7, 8, 10, 11],
        schools=list(School.objects.all()), opens_at=now - datetime.timedelta(minutes=1),
        closes_at=now + datetime.timedelta(hours=2),
    )  # fmt: skip
    invited = Student.objects.filter(school__in=campaign.schools.all(), school_class__grade__in=campaign.target_grades)
    codes = [c.code for c in access_codes_issue(actor=None, students=invited)]
    random.Random(7).shuffle(codes)
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # statistics for the planner, as a database in service has them
            cursor.execute("VACUUM ANALYZE")
    return codes


def answers(rng: random.Random) -> dict[str, str]:
    data = {f"PHQ9-{n}": str(rng.choice([0, 0, 0, 1, 1, 2, 3])) for n in range(1, 10)}
    data.update({f"GAD7-{n}": str(rng.choice([0, 0, 0, 1, 1, 2, 3])) for n in range(1, 8)})
    data.update({f"ASQ-{n}": "yes" if rng.random() < 0.03 else "no" for n in range(1, 5)})
    if any(data[f"ASQ-{n}"] == "yes" for n in range(1, 5)):
        data["ASQ-5"] = "yes" if rng.random() < 0.3 else "no"
    return data


class Student:
    """One browser: keep-alive connection, cookies, the pages in order. Records (step, seconds, ok) per request."""

    def __init__(self, log: list, rng: random.Random):
        self.conn = http.client.HTTPConnection(HOST, PORT, timeout=30)
        self.log, self.rng, self.cookies = log, rng, {}

    def request(self, step, method, path, form=None) -> tuple[int, bytes, dict]:
        headers = {"Cookie": "; ".join(self.cookies.values())} if self.cookies else {}
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        started = time.perf_counter()
        try:
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
            content = response.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.log.append((step, time.perf_counter() - started, False, time.time()))
            return 0, b"", {}
        elapsed = time.perf_counter() - started
        for value in response.headers.get_all("Set-Cookie") or []:
            if value.startswith(("csrftoken=", "portal_visit=")):  # the form's CSRF token, the visit's token
                self.cookies[value.split("=", 1)[0]] = value.split(";", 1)[0]
        return response.status, content, {"elapsed": elapsed, "location": response.headers.get("Location", "")}

    def answer(self, code: str) -> bool:
        status, page, meta = self.request("start", "GET", "/s/")
        ok = status == 200 and CSRF.search(page)
        self.log.append(("start", meta.get("elapsed", 0), bool(ok), time.time()))
        if not ok:
            return False
        csrf = CSRF.search(page).group(1).decode()
        flow = [("code", "/s/", {"code": code}), ("confirm", "/s/confirm/", {"choice": "yes"})]
        token = None
        for step, path, form in flow:
            form = {**form, "csrfmiddlewaretoken": csrf, **({"token": token} if token else {})}
            status, page, meta = self.request(step, "POST", path, form)
            if step == "confirm" and status == 302:  # the questions by post/redirect/get
                self.log.append((step, meta.get("elapsed", 0), True, time.time()))
                step = "questions"
                status, page, meta = self.request(step, "GET", meta["location"])
            found = TOKEN.search(page) if status == 200 else None
            self.log.append((step, meta.get("elapsed", 0), bool(found), time.time()))
            if not found:
                return False
            token = found.group(1).decode()
        form = {"csrfmiddlewaretoken": csrf, "token": token, **answers(self.rng)}
        status, _, meta = self.request("answer", "POST", "/s/answer/", form)
        stored = status == 302 and meta["location"].endswith("/s/done/")
        self.log.append(("answer", meta.get("elapsed", 0), stored, time.time()))
        status, _, meta = self.request("done", "GET", "/s/done/")
        self.log.append(("done", meta.get("elapsed", 0), status == 200, time.time()))
        return stored


def load_process(codes: list[str], threads: int, deadline: float, queue) -> None:
    log = []
    students_answer(codes, threads, deadline, lambda seed: Student(log, random.Random(seed)))
    queue.put(log)


def students_answer(codes: list[str], threads: int, deadline: float, student_for) -> None:
    """`threads` students at a time (each made by `student_for(seed)`) take the next code until none is left or the
    deadline passes."""
    lock, position = threading.Lock(), [0]

    def run(seed):
        student = student_for(seed)
        while time.time() < deadline:
            with lock:
                if position[0] >= len(codes):
                    return
                code = codes[position[0]]
                position[0] += 1
            student.answer(code)

    workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def serve(args, env) -> subprocess.Popen:
    command = [
        str(ROOT / ".venv/bin/gunicorn"), "config.wsgi:application", "--bind", f"{HOST}:{PORT}",
        "--workers", str(args.gunicorn_workers), "--log-level", "warning",
    ]  # fmt: skip
    if args.gunicorn_threads > 1:  # gthread: keep-alive, and a worker overlaps its database waits
        command += ["--worker-class", "gthread", "--threads", str(args.gunicorn_threads)]
    server = subprocess.Popen(command, cwd=ROOT, env=env)  # noqa: S603 (our own fixed command line)
    for _ in range(100):
        try:
            http.client.HTTPConnection(HOST, PORT, timeout=1).request("GET", "/s/help/")
            return server
        except OSError:
            time.sleep(0.2)
    server.terminate()
    raise SystemExit("gunicorn did not start")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] if ordered else 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--students-per-class", type=int, default=100)
    parser.add_argument("--duration", type=int, default=60, help="measured seconds, after the warm-up")
    parser.add_argument("--warmup", type=int, default=10, help="seconds of load before the measurement starts")
    parser.add_argument("--gunicorn-workers", type=int, default=6)
    parser.add_argument("--gunicorn-threads", type=int, default=1)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=12)
    args = parser.parse_args()
    if not args.database_url.startswith("postgres"):
        raise SystemExit("the portal load test runs against PostgreSQL, as in production")
    create_database(args.database_url)
    setup_django(args.database_url)
    codes = prepare(args)
    print(
        f"prepared {len(codes)} students with codes; gunicorn workers={args.gunicorn_workers} "
        f"threads={args.gunicorn_threads}; load: {args.processes} processes x {args.threads} students at a time"
    )

    env = {
        **os.environ, "DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": HOST,
        "DATABASE_URL": args.database_url, "SECURE_SSL_REDIRECT": "0", "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0", "SECURE_HSTS_SECONDS": "0", "DJANGO_SETTINGS_MODULE": "config.settings",
    }  # fmt: skip
    server = serve(args, env)
    try:
        queue = multiprocessing.Queue()
        share = [codes[n :: args.processes] for n in range(args.processes)]
        started = time.time()
        measured_from = started + args.warmup  # workers import lazily and fill their caches on first requests
        deadline = measured_from + args.duration
        procs = [
            multiprocessing.Process(target=load_process, args=(share[n], args.threads, deadline, queue))
            for n in range(args.processes)
        ]
        for p in procs:
            p.start()
        log = [entry for _ in procs for entry in queue.get()]
        for p in procs:
            p.join()
        finished = time.time()
    finally:
        server.terminate()
        server.wait()

    from django.db import connection

    from roster.models import AccessCode
    from screening.models import ScreeningResult

    connection.close()
    every_stored = [t for step, _, ok, t in log if step == "answer" and ok]
    errors = [(step, ok) for step, _, ok, _ in log if not ok]
    rows = ScreeningResult.objects.count()
    linked = ScreeningResult.objects.filter(access_code__isnull=False).values("access_code").distinct().count()
    used = AccessCode.objects.filter(used_at__isnull=False).count()
    # The figures cover the measured window only; errors and the database check cover the whole run.
    window = [entry for entry in log if measured_from <= entry[3] < deadline]
    stored = [t for step, _, ok, t in window if step == "answer" and ok]
    per_second: dict[int, int] = {}
    for t in stored:
        per_second[int(t - measured_from)] = per_second.get(int(t - measured_from), 0) + 1
    seconds = [per_second.get(s, 0) for s in range(args.duration)]
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(
        f"wall {finished - started:.1f} s ({args.warmup} s warm-up, {args.duration} s measured); "
        f"completed submissions {len(every_stored)} in all, {len(stored)} measured; errors {len(errors)}"
    )
    print(f"submissions/s over the measured {args.duration} s: mean {len(stored) / args.duration:.1f}, "
          f"min second {min(seconds)}, median second {statistics.median(seconds)}")  # fmt: skip
    print("completed per second:", " ".join(str(n) for n in seconds))
    every = [elapsed for _, elapsed, _, _ in window]
    p50, p95, p99 = (percentile(every, p) * 1000 for p in (50, 95, 99))
    print(f"latency, all requests measured: p50 {p50:.0f} ms, p95 {p95:.0f} ms, p99 {p99:.0f} ms over {len(every)}")
    for step in STEPS:
        times = [elapsed for s, elapsed, _, _ in window if s == step]
        print(f"  {step:8s} p50 {percentile(times, 50) * 1000:6.0f} ms   p95 {percentile(times, 95) * 1000:6.0f} ms")
    print(f"database: results {rows}, results linked to distinct codes {linked}, codes used {used}")
    lost_or_duplicated = not (rows == linked == used == len(every_stored))
    print(
        "consistency:", "FAILED (lost or duplicated submissions)" if lost_or_duplicated else "ok (every 302 = one row)"
    )
    if errors or lost_or_duplicated:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
