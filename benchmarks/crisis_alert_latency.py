"""Crisis-alert latency under portal load (issue 16's first number): from the submit of a critical answer to the
notification of a named on-duty adult, with the portal at full load, PostgreSQL and the django-q2 worker running;
then whether unacknowledged alerts climb within 60 s of their window's end.

    .venv/bin/python benchmarks/crisis_alert_latency.py \
        --database-url postgres://postgres@127.0.0.1:5432/xinqiao_crisis_$(date +%s)

Phase 1, latency: the database named is created (it must not exist; --recreate drops one that does: the access log
refuses DELETE and TRUNCATE, so an old database cannot be emptied) and prepared as benchmarks/portal_load.py does
(the demo district at --students-per-class, an open campaign, one code per student). Every school's hours are set to
00:00-23:59:59 and today and tomorrow are marked school days, so the run is inside school hours whatever the clock says;
each school's first psychology teacher is on duty 00:00-23:59:59 every weekday, each district's centre 24 hours. So an
alert's first level is the named on-duty psychology teacher, and the script checks that it is.
gunicorn (portal_load.serve) and `manage.py qcluster` (benchmarks/alert_latency.py's worker mode; Q_WORKERS, default
2) start, then students walk the real portal pages closed-loop with portal_load's concurrency (portal_load.Student).
A --critical-share of them answer critically, in turn: ASQ 1 yes (critical), ASQ 1 and 5 yes (acute), PHQ-9 item 9 = 1
(critical), PHQ-9 item 9 = 3 (red); the others answer as in portal_load but with no critical item (their totals may
still flag them yellow or orange: a case, no alert). The submit is when the answers POST was sent (the alert is
raised inside that request, cases.alerts via workflows.services.on_student_flagged); after the load the worker is
given --drain-timeout seconds to finish, and the latency of each critical submission measured in the window is the
created_at of the first "crisis_alert" notification of its alert minus its submit.

Phase 2, escalation: the web server and the worker restart with a copy of the tier rules whose alert windows are
--alert-window-minutes (CASE_TIER_RULES_FILE, which config/settings.py reads from the environment), and
--escalation-sample more students answer critically one after another. Nobody acknowledges; the delay of each is its
level-2 CrisisAlertStep.at minus the end of its first window (its level-1 step's time + the window). Phase 1 runs on the
tier rules as shipped (acute 5 min, red 10, critical 30), so no climb adds to the worker's load while it is measured.

Exit status: 1 when the run is not valid (fewer than --min-critical measured submissions, a critical submission with
no alert or not told to the on-duty teacher first, portal errors, an alert that never climbed); 2 when it is valid
but a target is missed (p99 >= 10 s, an escalation later than 60 s).
"""

import argparse
import datetime
import multiprocessing
import os
import platform
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import portal_load  # noqa: E402  (after the path: run as a script from anywhere)

# The critical answer patterns, in turn: (name, the answers that replace portal_load's for the critical items).
PATTERNS = (
    ("asq1", {"ASQ-1": "yes", "ASQ-5": "no"}),  # ASQ positive, not acute: critical, orange
    ("asq5", {"ASQ-1": "yes", "ASQ-5": "yes"}),  # acute: red
    ("phq9-1", {"PHQ9-9": "1"}),  # PHQ-9 item 9 above 0: critical, orange
    ("phq9-3", {"PHQ9-9": "3"}),  # PHQ-9 item 9 nearly every day: red
)
CRITICAL_ITEMS_OFF = {"PHQ9-9": "0", **{f"ASQ-{n}": "no" for n in range(1, 5)}}
P99_TARGET_S = 10.0
ESCALATION_TARGET_S = 60.0


def answers_for(rng: random.Random, pattern: str | None) -> dict[str, str]:
    """portal_load's answers with the critical items switched off, then the pattern's critical items on."""
    data = portal_load.answers(rng)
    data.pop("ASQ-5", None)  # asked only after a yes to ASQ 1-4
    data.update(CRITICAL_ITEMS_OFF)
    if pattern is not None:
        data.update(dict(PATTERNS)[pattern])
    return data


def critical_plan(codes: list[str], share: float, seed: int = 16) -> dict[str, str]:
    """Which codes answer critically, and how: a `share` of them, the patterns in turn."""
    rng = random.Random(seed)
    chosen = [code for code in codes if rng.random() < share]
    return {code: PATTERNS[n % len(PATTERNS)][0] for n, code in enumerate(chosen)}


class CriticalStudent(portal_load.Student):
    """portal_load's browser, answering per the plan; records (code, pattern, submit time, stored) of each critical
    submission, the submit being the moment the answers POST was sent."""

    def __init__(self, log: list, rng: random.Random, plan: dict[str, str], submits: list):
        super().__init__(log, rng)
        self.plan, self.submits, self.code = plan, submits, None

    def answer(self, code: str) -> bool:
        self.code = code
        return super().answer(code)

    def request(self, step, method, path, form=None):
        pattern = self.plan.get(self.code)
        if step == "answer":
            form = {key: value for key, value in form.items() if key in ("csrfmiddlewaretoken", "token")}
            form.update(answers_for(self.rng, pattern))
        sent = time.time()  # the student pressed submit: the alert is raised inside this request
        status, content, meta = super().request(step, method, path, form)
        if step == "answer" and pattern is not None:
            stored = status == 302 and meta.get("location", "").endswith("/s/done/")
            self.submits.append((self.code, pattern, sent, stored))
        return status, content, meta


def load_process(codes, plan, threads, deadline, queue) -> None:
    """portal_load's load with CriticalStudent: `threads` students at a time until the deadline."""
    log, submits = [], []
    portal_load.students_answer(
        codes, threads, deadline, lambda seed: CriticalStudent(log, random.Random(seed), plan, submits)
    )
    queue.put((log, submits))


# --- Preparation ----------------------------------------------------------------------------------------------


def database_create(database_url: str, *, recreate: bool) -> None:
    import psycopg

    parts = urllib.parse.urlparse(database_url)
    name = parts.path.lstrip("/")
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            if not recreate:
                raise SystemExit(f"database {name} exists: name a fresh one, or pass --recreate to drop it")
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def rules_file_write(window_minutes: int) -> str:
    """A copy of the tier rules with every alert window `window_minutes` long; returns its path."""
    import yaml

    data = yaml.safe_load((ROOT / "cases/tier_rules.yaml").read_text(encoding="utf-8"))
    data["alerts"]["windows"] = dict.fromkeys(data["alerts"]["windows"], f"{window_minutes}m")
    handle, path = tempfile.mkstemp(prefix="tier_rules_", suffix=".yaml")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        yaml.safe_dump(data, out, allow_unicode=True, sort_keys=False)
    return path


def world_prepare(args) -> list[str]:
    """portal_load.prepare (migrate, empty, the demo district, a campaign, codes), then the duty roster. Returns the
    codes."""
    codes = portal_load.prepare(args)
    duty_prepare()
    return codes


def duty_prepare() -> dict[int, int]:
    """Every school in school hours all day today and tomorrow, its first psychology teacher on duty 24 hours every
    weekday, each district's first centre too. Returns {school id: the on-duty teacher's user id}."""
    from django.utils import timezone

    from roster import duty
    from roster.models import CalendarDayKind, District, DutyKind, RoleAssignment, School
    from roster.roles import Role

    midnight, last = datetime.time(0, 0), datetime.time(23, 59, 59)
    today = timezone.localdate()
    on_duty = {}
    for district in District.objects.all():
        for day in (today, today + datetime.timedelta(days=1)):  # a weekend or holiday run stays in school hours
            duty.calendar_day_set(None, district=district, day=day, kind=CalendarDayKind.WORKDAY, name="benchmark")
        centre = RoleAssignment.objects.filter(role=Role.DISTRICT_CENTRE, district=district).order_by("user_id").first()
        if centre is not None:
            for weekday in range(7):
                duty.duty_slot_add(None, where=district, user=centre.user, kind=DutyKind.DISTRICT_CENTRE,
                                   weekday=weekday, starts=midnight, ends=midnight)  # fmt: skip
    for school in School.objects.all():
        school.day_starts, school.day_ends = midnight, last
        school._change_reason = "benchmark: school hours all day"
        school.save(update_fields=["day_starts", "day_ends"])
        teacher = RoleAssignment.objects.filter(role=Role.PSYCHOLOGY_TEACHER, school=school).order_by("user_id").first()
        if teacher is None:
            continue
        on_duty[school.pk] = teacher.user_id
        for weekday in range(7):  # a school duty stays within its day (roster.duty): 00:00-23:59:59
            duty.duty_slot_add(None, where=school, user=teacher.user, kind=DutyKind.PSYCHOLOGY_TEACHER,
                               weekday=weekday, starts=midnight, ends=last)  # fmt: skip
    return on_duty


# --- Processes ------------------------------------------------------------------------------------------------


def server_env(args, **extra) -> dict[str, str]:
    return {
        **os.environ, "DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": portal_load.HOST,
        "DATABASE_URL": args.database_url, "SECURE_SSL_REDIRECT": "0", "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0", "SECURE_HSTS_SECONDS": "0", "DJANGO_SETTINGS_MODULE": "config.settings",
        "Q_WORKERS": os.environ.get("Q_WORKERS", "2"), **extra,
    }  # fmt: skip


def worker_start(args, env) -> subprocess.Popen:
    """`manage.py qcluster` in benchmarks/alert_latency.py's worker mode (email kept in memory)."""
    command = [sys.executable, str(ROOT / "benchmarks/alert_latency.py"), "--worker", "--database-url",
               args.database_url]  # fmt: skip
    cluster = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)  # noqa: S603 (our own command)
    time.sleep(4)  # the cluster's start-up
    if cluster.poll() is not None:
        raise SystemExit(f"the task worker exited at start (status {cluster.returncode})")
    return cluster


def stop(process: subprocess.Popen | None) -> None:
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:  # the worker's own children too: it runs in a session of its own
            os.killpg(process.pid, signal.SIGKILL) if process.pid == os.getpgid(process.pid) else process.kill()
            process.wait()


# --- Measuring ------------------------------------------------------------------------------------------------


def alerts_of(codes: list[str]) -> dict[str, dict]:
    """For each code with a stored result: its result, alert (if any), the alert's first crisis-alert notification
    (time and recipients) and level-1 step, and who is on duty at the school when the alert was raised."""
    from cases.alerts import ALERT_NOTICE_KIND
    from cases.models import CrisisAlert, CrisisAlertStep
    from roster import duty
    from roster.models import DutyKind, Notification, School
    from screening.models import ScreeningResult

    found, schools = {}, {}
    for start in range(0, len(codes), 1000):
        chunk = codes[start : start + 1000]
        results = dict(
            ScreeningResult.objects.filter(access_code__code__in=chunk).values_list("pk", "access_code__code")
        )
        alerts = {a.screening_result_id: a for a in CrisisAlert.objects.filter(screening_result_id__in=results)}
        keys = {f"crisis_alert:{a.pk}": a for a in alerts.values()}
        first: dict[int, datetime.datetime] = {}
        rows = Notification.objects.filter(kind=ALERT_NOTICE_KIND, subject_key__in=keys).order_by("created_at", "pk")
        for key, created_at in rows.values_list("subject_key", "created_at"):
            first.setdefault(keys[key].pk, created_at)
        steps: dict[int, list] = {}
        for step in CrisisAlertStep.objects.filter(alert__in=alerts.values()).exclude(audiences="proctor"):
            steps.setdefault(step.alert_id, []).append(step)
        for result_id, code in results.items():
            alert = alerts.get(result_id)
            entry = {"result": result_id, "alert": alert}
            if alert is not None:
                entry["first_notice"] = first.get(alert.pk)
                entry["steps"] = sorted(steps.get(alert.pk, []), key=lambda s: s.level)
                entry["first_told"] = set(entry["steps"][0].recipients) if entry["steps"] else set()
                if alert.school_id not in schools:
                    schools[alert.school_id] = School.objects.get(pk=alert.school_id)
                on_duty = duty.on_duty_now(schools[alert.school_id], alert.raised_at, kind=DutyKind.PSYCHOLOGY_TEACHER)
                entry["on_duty"] = {u.pk for u in on_duty}
            found[code] = entry
    return found


def latency_measure(submits: list[tuple], measured: tuple[float, float]) -> dict:
    """The latency of each critical submission stored in the measured window; what is wrong with any stored one
    (warm-up included)."""
    stored = [s for s in submits if s[3]]
    found = alerts_of([code for code, _, _, _ in stored])
    count, latencies, by_pattern, problems = 0, [], {}, []
    for code, pattern, submitted, _ in stored:
        in_window = measured[0] <= submitted < measured[1]
        count += in_window
        entry = found.get(code)
        if entry is None:
            problems.append(f"{code}: a 302 but no stored result")
            continue
        alert = entry["alert"]
        if alert is None:
            problems.append(f"{code} ({pattern}): no crisis alert")
            continue
        if entry["first_notice"] is None:
            problems.append(f"{code} ({pattern}): alert {alert.pk} has no crisis_alert notification")
            continue
        level_one = entry["steps"][0] if entry["steps"] else None
        if not alert.in_school_hours or level_one is None or level_one.audiences != "duty_psychology":
            problems.append(f"{code}: alert {alert.pk} did not start at the on-duty psychology teacher")
        elif not entry["on_duty"] or not entry["first_told"] <= entry["on_duty"]:
            problems.append(f"{code}: alert {alert.pk} first told {sorted(entry['first_told'])}, "
                            f"on duty {sorted(entry['on_duty'])}")  # fmt: skip
        if in_window:
            seconds = entry["first_notice"].timestamp() - submitted
            latencies.append(seconds)
            by_pattern.setdefault(pattern, []).append(seconds)
    return {"count": count, "latencies": latencies, "by_pattern": by_pattern, "problems": problems}


def escalation_measure(codes: list[str], window_minutes: int) -> dict:
    """For each code's alert: the delay from the end of its first window to its level-2 step (None: not climbed)."""
    found = alerts_of(codes)
    window = datetime.timedelta(minutes=window_minutes)
    delays, problems = {}, []
    for code in codes:
        entry = found.get(code) or {}
        alert = entry.get("alert")
        if alert is None:
            problems.append(f"{code}: no alert")
            continue
        steps = {step.level: step for step in entry["steps"]}
        if 1 not in steps:
            problems.append(f"{code}: alert {alert.pk} has no level-1 step")
            continue
        due = steps[1].at + window
        delays[code] = (steps[2].at - due).total_seconds() if 2 in steps else None
        if 2 in steps and steps[2].audiences != "psychology_teachers,principal":
            problems.append(f"{code}: alert {alert.pk} level 2 told {steps[2].audiences}")
    return {"delays": delays, "problems": problems}


def summary(values: list[float]) -> str:
    if not values:
        return "none"
    p = portal_load.percentile
    return (f"p50 {p(values, 50):.2f} s, p95 {p(values, 95):.2f} s, p99 {p(values, 99):.2f} s, "
            f"max {max(values):.2f} s (n={len(values)})")  # fmt: skip


# --- The run --------------------------------------------------------------------------------------------------


def phase_load(args, codes, plan, env) -> dict:
    """Phase 1: the portal load with the worker running; returns the logs and the critical submissions."""
    queue = multiprocessing.Queue()
    share = [codes[n :: args.processes] for n in range(args.processes)]
    started = time.time()
    measured = (started + args.warmup, started + args.warmup + args.duration)
    procs = [
        multiprocessing.Process(target=load_process, args=(share[n], plan, args.threads, measured[1], queue))
        for n in range(args.processes)
    ]
    for p in procs:
        p.start()
    log, submits = [], []
    for _ in procs:
        part_log, part_submits = queue.get()
        log += part_log
        submits += part_submits
    for p in procs:
        p.join()
    return {"log": log, "submits": submits, "started": started, "measured": measured, "finished": time.time()}


def drain(codes: list[str], timeout: float) -> float:
    """Wait until every code's alert has its first notification (or the timeout); returns the seconds waited."""
    from django.db import connection

    started = time.time()
    while time.time() - started < timeout:
        found = alerts_of(codes)
        if all(e["alert"] is not None and e.get("first_notice") for e in found.values()) and len(found) == len(codes):
            break
        connection.close()
        time.sleep(2)
    return time.time() - started


def phase_escalation(args, codes, env) -> dict:
    """Phase 2: critical submissions one after another with short windows; wait for the climbs."""
    log, submits = [], []
    plan = {code: PATTERNS[n % len(PATTERNS)][0] for n, code in enumerate(codes)}
    student = CriticalStudent(log, random.Random(2), plan, submits)
    for code in codes:
        student.answer(code)
    stored = [code for code, _, _, ok in submits if ok]
    deadline = time.time() + args.alert_window_minutes * 60 + ESCALATION_TARGET_S + 90
    while time.time() < deadline:
        result = escalation_measure(stored, args.alert_window_minutes)
        if len(result["delays"]) == len(stored) and all(d is not None for d in result["delays"].values()):
            break
        from django.db import connection

        connection.close()
        time.sleep(5)
    result = escalation_measure(stored, args.alert_window_minutes)
    result["submitted"], result["stored"] = len(codes), len(stored)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True, help="a PostgreSQL database that does not exist yet")
    parser.add_argument("--recreate", action="store_true", help="drop the database first if it exists")
    parser.add_argument("--students-per-class", type=int, default=100)
    parser.add_argument("--duration", type=int, default=60, help="measured seconds, after the warm-up")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--gunicorn-workers", type=int, default=6)
    parser.add_argument("--gunicorn-threads", type=int, default=1)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=12)
    parser.add_argument("--critical-share", type=float, default=0.12, help="share of students answering critically")
    parser.add_argument("--min-critical", type=int, default=500, help="fewest measured critical submissions")
    parser.add_argument("--drain-timeout", type=float, default=600, help="seconds the worker gets after the load")
    parser.add_argument("--alert-window-minutes", type=int, default=1, help="alert windows in the escalation phase")
    parser.add_argument("--escalation-sample", type=int, default=20, help="alerts left to climb (0: skip)")
    args = parser.parse_args()
    if not args.database_url.startswith("postgres"):
        raise SystemExit("the crisis-alert benchmark runs against PostgreSQL, as in production")
    database_create(args.database_url, recreate=args.recreate)
    portal_load.setup_django(args.database_url)
    prepared = time.time()
    codes = world_prepare(args)
    keep = len(codes) - args.escalation_sample  # the escalation phase's students, kept out of the load
    codes, reserved = codes[:keep], codes[keep:]
    plan = critical_plan(codes, args.critical_share)
    from django.db import connection

    connection.close()
    print(f"prepared {len(codes)} students with codes ({len(plan)} planned critical, share {args.critical_share}) "
          f"in {time.time() - prepared:.0f} s; gunicorn workers={args.gunicorn_workers} "
          f"threads={args.gunicorn_threads}; load {args.processes} processes x {args.threads} students at a time; "
          f"Q_WORKERS={os.environ.get('Q_WORKERS', '2')}")  # fmt: skip

    env = server_env(args)
    server = portal_load.serve(args, env)
    cluster, rules = None, None
    try:
        cluster = worker_start(args, env)
        run = phase_load(args, codes, plan, env)
        critical_codes = [code for code, _, _, ok in run["submits"] if ok]
        waited = drain(critical_codes, args.drain_timeout)
        figures = latency_measure(run["submits"], run["measured"])
        escalation = None
        if args.escalation_sample:
            stop(cluster)
            stop(server)  # alerts are raised in the submitting request: the web server reads the short windows too
            rules = rules_file_write(args.alert_window_minutes)
            server = portal_load.serve(args, {**env, "CASE_TIER_RULES_FILE": rules})
            cluster = worker_start(args, {**env, "CASE_TIER_RULES_FILE": rules})  # the same key: tasks are signed
            escalation = phase_escalation(args, reserved, env)
    finally:
        stop(cluster)
        stop(server)
        if rules:
            os.unlink(rules)
    report(args, run, waited, figures, escalation)


def report(args, run, waited, figures, escalation) -> None:
    from django.db import connection

    from cases.models import CrisisAlert

    log, (measured_from, measured_to) = run["log"], run["measured"]
    window = [entry for entry in log if measured_from <= entry[3] < measured_to]
    errors: dict[str, int] = {}
    for step, _, ok, _ in log:
        if not ok:
            errors[step] = errors.get(step, 0) + 1
    stored = [1 for step, _, ok, _ in window if step == "answer" and ok]
    critical_all = [s for s in run["submits"] if s[3]]
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"PostgreSQL {connection.cursor().connection.info.server_version}")  # fmt: skip
    print(f"portal: wall {run['finished'] - run['started']:.1f} s ({args.warmup} s warm-up, {args.duration} s "
          f"measured); {len(window) / args.duration:.1f} requests/s, {len(stored) / args.duration:.1f} completed "
          f"students/s measured; errors {sum(errors.values())} {errors or ''}")  # fmt: skip
    print(
        f"critical submissions: {len(critical_all)} stored in all, {figures['count']} in the measured window; "
        f"worker caught up {waited:.0f} s after the load; alerts in the database {CrisisAlert.objects.count()}"
    )
    lat = figures["latencies"]
    print(f"submit -> first crisis_alert notification to the on-duty psychology teacher: {summary(lat)}")
    for pattern, values in sorted(figures["by_pattern"].items()):
        print(f"  {pattern:7s} {summary(values)}")
    for problem in figures["problems"][:20]:
        print("  PROBLEM", problem)
    invalid = bool(figures["problems"]) or figures["count"] < args.min_critical or sum(errors.values()) > 0
    missed = bool(lat) and portal_load.percentile(lat, 99) >= P99_TARGET_S
    print(f"target p99 < {P99_TARGET_S:.0f} s over >= {args.min_critical}: "
          f"{'INVALID RUN' if invalid else 'missed' if missed else 'met'}")  # fmt: skip
    if escalation is not None:
        delays = escalation["delays"]
        climbed = [d for d in delays.values() if d is not None]
        print(f"escalation (windows {args.alert_window_minutes} min): {escalation['stored']}/{escalation['submitted']}"
              f" stored, {len(climbed)} climbed to level 2; delay after the window's end: "
              f"p95 {portal_load.percentile(climbed, 95):.1f} s, max {max(climbed, default=0):.1f} s, "
              f"min {min(climbed, default=0):.1f} s")  # fmt: skip
        for problem in escalation["problems"]:
            print("  PROBLEM", problem)
        not_climbed = len(climbed) < escalation["stored"] or escalation["stored"] < escalation["submitted"]
        invalid = invalid or not_climbed or bool(escalation["problems"])
        late = any(d > ESCALATION_TARGET_S for d in climbed)
        missed = missed or late
        print(f"target: every climb within {ESCALATION_TARGET_S:.0f} s of the window's end: "
              f"{'NOT ALL CLIMBED' if not_climbed else 'missed' if late else 'met'}")  # fmt: skip
    if invalid:
        raise SystemExit(1)
    if missed:
        raise SystemExit(2)


if __name__ == "__main__":
    main()
