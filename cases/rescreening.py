"""The students a targeted re-screening of "students with open signals" is for (issue 20, seed 001's key times).

screening.campaigns resolves that target through a finder it cannot import (screening never imports cases):
CasesConfig.ready registers `students_with_open_signals` there. May import: roster, screening, cases.
"""

from __future__ import annotations

from cases.models import Signal, SignalStatus


def students_with_open_signals(school_ids: set[int]) -> set[int]:
    """Ids of the students with a signal still waiting for triage (SignalStatus.OPEN) in `school_ids`. One query.

    Access: screening.campaigns.campaign_create / campaign_target_refresh, which have checked the schools' scope.
    """
    signals = Signal.objects.filter(status=SignalStatus.OPEN, school_id__in=set(school_ids))
    return set(signals.values_list("student_id", flat=True).distinct())
