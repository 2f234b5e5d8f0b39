"""Small-cell suppression of report tables: a count of fewer than k students is shown as "<k", so a class or grade
report cannot single out a child (settings.REPORT_MIN_CELL, default 5).

Hiding the small cells alone is not enough: a row's cells add up to its completed count and a column's to the total
row, so one hidden cell could be worked back by subtraction. Complementary suppression hides a second cell in any
row or column left with exactly one hidden cell (the smallest other, zeros included), until no such line is left.
What remains hidden can only be bounded, never recovered.

Pure functions over plain dicts: no database, no request. May import: nothing of ours.
"""

from __future__ import annotations

from collections.abc import Sequence


def small_cells(counts: dict[str, int], k: int) -> set[str]:
    """The keys whose count describes between 1 and k-1 students (0 describes nobody)."""
    return {key for key, n in counts.items() if 0 < n < k}


def _hide_a_partner(counts: dict[str, int], hidden: set[str], order: Sequence[str]) -> bool:
    """Hide the smallest visible cell beside a single hidden one; False when there is nothing left to hide."""
    visible = [key for key in order if key not in hidden]
    if not visible:
        return False
    partner = min(visible, key=lambda key: (counts[key], order.index(key)))
    hidden.add(partner)
    return True


def suppress_table(
    rows: list[dict[str, int]], columns: Sequence[str], k: int, *, total: dict[str, int] | None = None
) -> tuple[list[set[str]], set[str]]:
    """Which cells of each row (and of the totals row, when it is suppressed too) to show as "<k".

    `total` is the totals row when it describes fewer students than the school level (it is then suppressed like
    any row); None when the totals row stays visible (a school or more), in which case each column must not be left
    with one hidden cell either, since the visible total would give it away.
    """
    hidden = [small_cells(row, k) for row in rows]
    total_hidden = small_cells(total, k) if total is not None else set()
    changed = True
    while changed:
        changed = False
        for row, row_hidden in zip(rows, hidden, strict=True):
            if len(row_hidden) == 1:
                changed |= _hide_a_partner(row, row_hidden, columns)
        if total is not None and len(total_hidden) == 1:
            changed |= _hide_a_partner(total, total_hidden, columns)
        for column in columns:
            if total is not None and column in total_hidden:
                continue  # the column's sum is hidden itself: nothing to subtract from
            holders = [i for i, row_hidden in enumerate(hidden) if column in row_hidden]
            if len(holders) != 1:
                continue
            others = [i for i, row_hidden in enumerate(hidden) if column not in row_hidden]
            if others:
                partner = min(others, key=lambda i: (rows[i][column], i))
                hidden[partner].add(column)
                changed = True
            elif total is not None:  # a single row: its total is the same numbers
                total_hidden.add(column)
                changed = True
    return hidden, total_hidden
