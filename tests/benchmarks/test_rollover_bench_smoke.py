"""A tiny pass of benchmarks/rollover_bench.py, so the script keeps working; the figures come from a run by hand (see
the script's docstring)."""

import io

from benchmarks.rollover_bench import measure, seed
from roster.models import Rollover, RolloverStatus, SchoolClass


def test_the_rollover_benchmark_rolls_a_city_over_and_reimports_its_class_lists_with_moves(db):
    made = seed(students=600, stdout=io.StringIO())

    results = measure(moves=10, stdout=io.StringIO())

    steps = [r["step"] for r in results]
    assert steps[:5] == ["preview", "rollover", "undo", "rollover again", "second run (nothing to do)"]
    assert made["schools"] >= 6 and SchoolClass.objects.archived().exists()
    assert list(Rollover.objects.values_list("status", flat=True).order_by("pk")) == [
        RolloverStatus.UNDONE,
        RolloverStatus.APPLIED,
    ]
    moves = results[-1]
    assert moves["moved"] == 10 and moves["errors"] == 0
    assert moves["staged"] + moves["new"] == 10  # staged as school moves, or (without move detection) new rows
