"""The demo district's screening: one open campaign, most students already answered (synthetic answers), and the
showcase homeroom teacher's class left to answer live with printed codes.

Runs after roster's seed_demo. Idempotent: a second run changes nothing. DEBUG only (see the command).
"""

from __future__ import annotations

import csv
import datetime
import io
import random
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from roster.access_codes import access_codes_issue
from roster.models import RoleAssignment, School, Student, User
from roster.roles import Role
from screening.campaigns import campaign_create
from screening.models import Campaign, Instrument, RuleSet
from screening.results_import import ResultsImport, import_results

CAMPAIGN_NAME = "2026-2027学年秋季心理健康筛查（示范）"
ANSWERED_SHARE = 0.8


@dataclass
class ScreeningDemo:
    created: bool
    campaign: Campaign
    results: int
    live_class: str


def _profile_answers(rng: random.Random) -> dict[str, str]:
    """Mostly calm; some low mood or worry; a few students at risk, as screening rounds find."""
    roll = rng.random()
    level = 0 if roll < 0.78 else 1 if roll < 0.92 else 2 if roll < 0.985 else 3
    weights = [[8, 2, 0, 0], [3, 4, 2, 1], [1, 3, 3, 3], [1, 2, 3, 4]][level]
    row = {f"PHQ9_{n}": str(rng.choices(range(4), weights)[0]) for n in range(1, 9)}
    self_harm = [[200, 3, 0.5, 0.2], [50, 5, 1, 0.5], [10, 4, 1.5, 1], [2, 3, 3, 2]][level]
    row["PHQ9_9"] = str(rng.choices(range(4), self_harm)[0])
    row.update({f"GAD7_{n}": str(rng.choices(range(4), weights)[0]) for n in range(1, 8)})
    at_risk = level == 3 or (level == 2 and rng.random() < 0.3)
    row.update({f"ASQ_{n}": "是" if at_risk and rng.random() < 0.5 else "否" for n in range(1, 5)})
    asked = any(row[f"ASQ_{n}"] == "是" for n in range(1, 5))
    row["ASQ_5"] = ("是" if rng.random() < 0.25 else "否") if asked else ""
    return row


def build_screening_demo(*, seed: int = 2026) -> ScreeningDemo:
    existing = Campaign.objects.filter(name=CAMPAIGN_NAME).first()
    homeroom = RoleAssignment.objects.filter(role=Role.HOMEROOM_TEACHER, user__username="homeroom").first()
    live_class = homeroom.school_class if homeroom else None
    if existing is not None:
        return ScreeningDemo(False, existing, existing.results.count(), str(live_class or "-"))
    rng = random.Random(seed)  # noqa: S311 (synthetic demo answers, not security)
    now = timezone.now()
    with transaction.atomic():
        campaign = campaign_create(
            actor=User.objects.get(username="city_admin"), name=CAMPAIGN_NAME, school_year="2026-2027",
            term="autumn", instruments=[Instrument.objects.filter(code=c).first() for c in ("PHQ9", "GAD7", "ASQ")],
            ruleset=RuleSet.objects.filter(code="adolescent-default").order_by("-version").first(),
            target_grades=[4, 5, 6, 7, 8, 10, 11], schools=list(School.objects.all()),
            opens_at=now - datetime.timedelta(days=2), closes_at=now + datetime.timedelta(days=12),
        )  # fmt: skip
        invited = Student.objects.filter(
            school__in=campaign.schools.all(), school_class__grade__in=campaign.target_grades, status="active"
        ).select_related("school")
        if live_class is not None:
            invited = invited.exclude(school_class=live_class)
        header = ["学校代码", "学号", *(f"PHQ9_{n}" for n in range(1, 10)), *(f"GAD7_{n}" for n in range(1, 8))]
        header += [f"ASQ_{n}" for n in range(1, 6)]
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=header)
        writer.writeheader()
        for student in invited.order_by("pk"):
            if rng.random() < ANSWERED_SHARE:
                writer.writerow({"学校代码": student.school.code, "学号": student.student_no, **_profile_answers(rng)})
        report = import_results(
            ResultsImport(campaign=campaign, data=out.getvalue().encode("utf-8"), filename="demo.csv", dry_run=False)
        )
        if report.refused or report.error_lines:
            raise RuntimeError(f"demo results refused: {report.refused or report.errors[:3]}")
        if live_class is not None:
            access_codes_issue(actor=None, students=Student.objects.filter(school_class=live_class))
    return ScreeningDemo(True, campaign, campaign.results.count(), str(live_class or "-"))
