"""A smoke-size pass of benchmarks/crisis_alert_latency.py, so the script keeps working as the crisis loop changes: the
same preparation and portal walk against the test server (tasks run inline here, so latencies are not meaningful),
the same measurement and the same escalation check. The figures come from the script on PostgreSQL (its docstring)."""

import argparse
import datetime
import os
import random
from urllib.parse import urlparse

import pytest
import yaml

from benchmarks import crisis_alert_latency as bench
from benchmarks import portal_load


def test_the_short_window_rules_file_is_valid_and_shortens_every_alert_window():
    from cases.tiers import parse_rules

    path = bench.rules_file_write(1)
    with open(path, encoding="utf-8") as handle:
        rules = parse_rules(yaml.safe_load(handle))
    os.unlink(path)

    assert {str(window) for window in rules.alerts.windows.values()} == {"1m"}


def test_every_critical_pattern_answers_critically_and_the_others_do_not():
    plain = bench.answers_for(random.Random(1), None)
    assert plain["PHQ9-9"] == "0" and all(plain[f"ASQ-{n}"] == "no" for n in range(1, 5)) and "ASQ-5" not in plain
    for name, items in bench.PATTERNS:
        assert bench.answers_for(random.Random(1), name).items() >= items.items()


@pytest.mark.django_db(transaction=True)
def test_critical_answers_through_the_portal_reach_the_on_duty_teacher_and_climb(live_server, monkeypatch, settings):
    from django.utils import timezone

    from cases.alerts import crisis_alerts_escalate_due

    settings.CSRF_COOKIE_SECURE, settings.CSRF_COOKIE_NAME = False, "csrftoken"  # the benchmark's plain-HTTP browser
    address = urlparse(live_server.url)
    monkeypatch.setattr(portal_load, "HOST", address.hostname)
    monkeypatch.setattr(portal_load, "PORT", address.port)
    codes = bench.world_prepare(argparse.Namespace(students_per_class=1))
    plan = {code: name for code, (name, _) in zip(codes, bench.PATTERNS, strict=False)}
    plan[codes[len(plan)]] = None  # and one student who answers nothing critical
    log, submits = [], []
    student = bench.CriticalStudent(log, random.Random(3), plan, submits)

    for code in plan:
        assert student.answer(code)

    figures = bench.latency_measure(submits, (0, float("inf")))
    assert figures["problems"] == []
    assert figures["count"] == len(bench.PATTERNS) == len(figures["latencies"])
    assert sorted(figures["by_pattern"]) == sorted(name for name, _ in bench.PATTERNS)

    crisis_alerts_escalate_due(now=timezone.now() + datetime.timedelta(minutes=31))  # every window has ended
    critical = [code for code, name in plan.items() if name]
    escalation = bench.escalation_measure(critical, window_minutes=1)
    assert escalation["problems"] == []
    assert all(delay is not None for delay in escalation["delays"].values())
    assert len(escalation["delays"]) == len(critical)
