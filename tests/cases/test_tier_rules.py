"""The tier rules are data (cases/tier_rules.yaml), read through cases.tiers and validated when the project starts:
every problem of a bad file is listed at once, and the project refuses to start with it."""

import copy
import datetime
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cases import tiers
from cases.tiers import Audience, Duration, TierRulesInvalid, parse_rules
from roster.roles import Role

ROOT = Path(__file__).resolve().parent.parent.parent


def test_the_shipped_rules_give_every_tier_every_step_and_the_documented_defaults():
    rules = tiers.rules()
    for tier in ("yellow", "orange", "red"):
        assert set(rules.tiers[tier].deadlines) == set(tiers.STEPS)
    red, orange, yellow = (tiers.tier_rule(t) for t in ("red", "orange", "yellow"))
    assert red.deadline("triage") == Duration(1, "h") and orange.deadline("triage") == Duration(1, "sd")
    assert yellow.deadline("triage") == Duration(3, "sd") and yellow.deadline("approval") == Duration(1, "sd")
    assert red.closure_chain == (Role.DISTRICT_CENTRE, Role.CITY_CENTRE)
    assert orange.closure_chain == (Role.DISTRICT_CENTRE,) and yellow.closure_chain == (Role.PRINCIPAL,)
    assert [step.notify for step in red.overdue_chain] == [
        Audience.ASSIGNEE,
        Audience.PRINCIPAL,
        Audience.DISTRICT_DUTY,
    ]
    windows = tiers.alert_rules().windows
    assert (windows["acute"], windows["red"], windows["critical"]) == (Duration(5, "m"), Duration(10, "m"),
                                                                       Duration(30, "m"))  # fmt: skip
    assert tiers.alert_rules().levels(True)[0] == (Audience.DUTY_PSYCHOLOGY,)
    assert tiers.alert_rules().levels(False)[0] == (Audience.DISTRICT_DUTY,)


def test_a_bad_rules_file_lists_every_problem_at_once():
    data = copy.deepcopy(tiers.raw_rules())
    data["tiers"]["red"]["deadlines"]["triage"] = "1sd"  # red never waits for a school day
    data["tiers"]["orange"]["deadlines"]["plan"] = "soon"
    del data["tiers"]["yellow"]["deadlines"]["staffing"]
    data["tiers"]["yellow"]["closure_chain"] = ["headmaster"]
    data["alerts"]["school_hours"][0] = ["duty_nurse"]
    with pytest.raises(TierRulesInvalid) as invalid:
        parse_rules(data)
    problems = "\n".join(invalid.value.problems)
    assert len(invalid.value.problems) == 5, problems
    for expected in ("tiers.red.deadlines.triage: red never waits", "tiers.orange.deadlines.plan", "staffing: missing",
                     "unknown 'headmaster'", "unknown audience 'duty_nurse'"):  # fmt: skip
        assert expected in problems


def test_a_changed_rule_is_read_through_the_one_module(world):
    data = copy.deepcopy(tiers.raw_rules())
    data["tiers"]["red"]["deadlines"]["triage"] = "30m"
    start = datetime.datetime(2026, 12, 7, 10, 0, tzinfo=datetime.UTC)
    with tiers.rules_override(data):
        assert tiers.due_after("red", "triage", start, world.school_a1) == start + datetime.timedelta(minutes=30)
    assert tiers.due_after("red", "triage", start, world.school_a1) == start + datetime.timedelta(hours=1)


def test_the_project_refuses_to_start_with_a_bad_rules_file(tmp_path):
    data = tiers.raw_rules()
    data["tiers"]["red"]["deadlines"]["interview"] = "2sd"
    bad = tmp_path / "rules.yaml"
    bad.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(DJANGO_SETTINGS_MODULE="config.test_settings", CASE_TIER_RULES_FILE=str(bad))
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)  # fmt: skip
    assert result.returncode != 0
    assert "tiers.red.deadlines.interview: red never waits for a school day" in result.stderr
