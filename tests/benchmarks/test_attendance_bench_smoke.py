"""A tiny pass of benchmarks/attendance_bench.py, so the script keeps working; the figures come from a run by hand (see
the script's docstring)."""

import io

from benchmarks.attendance_bench import measure, seed
from cases.models import Signal, SignalSource
from roster.models import Absence


def test_the_attendance_benchmark_imports_a_day_and_raises_the_seeded_episodes_once(db):
    made = seed(students=600, schools=4, absent=300, run_share=0.05, window_share=0.03, stdout=io.StringIO())

    check, imported, again = measure(made["csv"], stdout=io.StringIO())

    assert (check["new"], check["raised"], check["errors"]) == (300, 0, 0)
    assert imported["new"] == 300 and imported["errors"] == 0
    assert imported["raised"] == made["runs"] + made["windows"] == 15 + 9
    assert (again["unchanged"], again["raised"]) == (300, 0)
    assert Absence.objects.filter(date=made["day"]).count() == 300
    assert Signal.objects.filter(source=SignalSource.ABSENCE).count() == 24
