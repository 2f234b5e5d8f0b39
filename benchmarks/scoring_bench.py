"""Pure scoring and tiering throughput: 100,000 students × (PHQ-9 + GAD-7 + ASQ), no database.

    .venv/bin/python benchmarks/scoring_bench.py [--students N]

Storing results is not measured yet (the result model comes with the rest of issue 4).
"""

import argparse
import os
import platform
import random
import resource
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "1")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--students", type=int, default=100_000)
    args = parser.parse_args()
    import django

    django.setup()
    from screening.definitions import shipped_instruments, shipped_ruleset
    from screening.scoring import score_instrument, tier_for

    instruments, rules = shipped_instruments(), shipped_ruleset()
    rng = random.Random(4)
    weights = [0.55, 0.25, 0.12, 0.08]  # most students answer "not at all"
    batch = []
    for _ in range(args.students):
        asq = {n: rng.choices(["no", "yes", "declined"], [0.9, 0.07, 0.03])[0] for n in range(1, 5)}
        asq[5] = rng.choices(["no", "yes"], [0.8, 0.2])[0]
        batch.append(
            (
                {n: str(rng.choices(range(4), weights)[0]) for n in range(1, 10)},
                {n: str(rng.choices(range(4), weights)[0]) for n in range(1, 8)},
                asq,
            )
        )
    started = time.perf_counter()
    tiers = Counter()
    for phq, gad, asq in batch:
        scores = {
            "PHQ9": score_instrument(instruments["PHQ9"], phq),
            "GAD7": score_instrument(instruments["GAD7"], gad),
            "ASQ": score_instrument(instruments["ASQ"], asq),
        }
        tiers[tier_for(rules, scores).tier] += 1
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"machine: {platform.node()} · {os.cpu_count()} cores · Python {platform.python_version()}")
    print(f"{args.students} students scored and tiered in {seconds:.1f} s = {args.students / seconds:,.0f} results/s; "
          f"peak {peak:.0f} MB; tiers {dict(sorted(tiers.items()))}")  # fmt: skip


if __name__ == "__main__":
    main()
