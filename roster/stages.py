"""School stages (学段) and the grades each allows: the one home of that rule.

Imported by roster.models (the field's choices), the roster imports, the admin's grade filters and screening's
campaign form. Pure: no ORM here, so the rule is testable on its own.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import models
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _


class SchoolStage(models.TextChoices):
    PRIMARY = "primary", _("Primary school")
    JUNIOR = "junior", _("Junior secondary school")
    SENIOR = "senior", _("Senior secondary school")
    NINE_YEAR = "nine_year", _("Nine-year school")
    COMPLETE_SECONDARY = "complete_secondary", _("Complete secondary school")
    TWELVE_YEAR = "twelve_year", _("Twelve-year school")


STAGE_GRADES: dict[str, range] = {
    SchoolStage.PRIMARY: range(1, 7),
    SchoolStage.JUNIOR: range(7, 10),
    SchoolStage.SENIOR: range(10, 13),
    SchoolStage.NINE_YEAR: range(1, 10),
    SchoolStage.COMPLETE_SECONDARY: range(7, 13),
    SchoolStage.TWELVE_YEAR: range(1, 13),
}

# Schools write their stage in their own words; the import accepts these besides the labels and the codes.
STAGE_ALIASES = {
    "小学": SchoolStage.PRIMARY,
    "初中": SchoolStage.JUNIOR,
    "初级中学": SchoolStage.JUNIOR,
    "高中": SchoolStage.SENIOR,
    "高级中学": SchoolStage.SENIOR,
    "九年一贯制": SchoolStage.NINE_YEAR,
    "九年一贯制学校": SchoolStage.NINE_YEAR,
    "完全中学": SchoolStage.COMPLETE_SECONDARY,
    "完中": SchoolStage.COMPLETE_SECONDARY,
    "十二年一贯制": SchoolStage.TWELVE_YEAR,
    "十二年一贯制学校": SchoolStage.TWELVE_YEAR,
}


def stage_grades(stage: str) -> range:
    """The grades a school of this stage has. An unknown stage allows every grade (nothing is refused by mistake)."""
    return STAGE_GRADES.get(stage, STAGE_GRADES[SchoolStage.TWELVE_YEAR])


def stage_allows(stage: str, grade: int) -> bool:
    return grade in stage_grades(stage)


def grades_text(stage: str) -> str:
    """“1–6” for a primary school: how messages name the grades a stage allows."""
    grades = stage_grades(stage)
    return f"{grades[0]}–{grades[-1]}"


def stage_for_grades(grades: Iterable[int]) -> str:
    """The narrowest stage whose grades cover all of these; a twelve-year school when there are none (no
    evidence: refuse nothing)."""
    wanted = set(grades)
    if not wanted:
        return SchoolStage.TWELVE_YEAR
    covering = [stage for stage, allowed in STAGE_GRADES.items() if wanted <= set(allowed)]
    return min(covering, key=lambda stage: len(STAGE_GRADES[stage]))


def grades_for_stages(stages: Iterable[str]) -> list[int]:
    """Every grade some school of these stages has, in order."""
    return sorted({grade for stage in set(stages) for grade in stage_grades(stage)})


def grade_outside_stage_message(*, school: str, stage: str, grade: int) -> str:
    return gettext(
        "%(school)s (stage: %(stage)s, grades %(grades)s) has no grade %(grade)d. Check the grade, or the stage in "
        "the school's record."
    ) % {"school": school, "stage": SchoolStage(stage).label, "grades": grades_text(stage), "grade": grade}
