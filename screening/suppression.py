"""Small-cell suppression of reports: a count of fewer than k students is shown as "<k", so a class or grade report
cannot single out a child (settings.REPORT_MIN_CELL, default 5).

One report is one set of cells (`CellSet`): every table and chart series on it, tied by the sums anyone can read
off the page: a row's tiers add up to its completed count, a column's rows to its total, the students in no special
group and those in at least one to the node's total in the table above. Hiding the small cells alone is not enough,
since a hidden cell could be worked back from a sum by subtraction, in its own table or from another. So:

- a row (a class, a special group, a distribution) of fewer than k students shows none of its counts: its zeros
  with one small cell would name what its few students answered ("0 0 0 <5" with 1 completed is one red child);
- complementary suppression: any sum left with exactly one hidden cell hides a second (the smallest other, zeros
  included), until no such sum is left, across every table of the report at once;
- a count no table prints but a reader works out by subtraction (the students in some special group: the total less
  those in none) is a cell too, suppressed like the others: small, it hides a partner in the sum that gives it.

What remains hidden can only be bounded, never recovered. A hidden cell is printed as what is true of it (`mark`):
"<k" where it is below k (a small count, or a zero or small cell hidden beside one), "*" where it is k or more (a
complementary cell, or a cell of a row hidden whole, that is not small: "<k" would be a false number). A reader can
thus bound a "<k" cell to 0..k-1 and a "*" cell to k or more; with a "*" in a sum, a "<k" cell beside it is still
anywhere from 0 up to at least its true value, so the sums give back no small count.

Pure functions over plain numbers: no database, no request. May import: nothing of ours.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence

HIDDEN_MARK = "*"  # a hidden count of k or more: it makes no claim about its size


def mark(n: int, k: int) -> str:
    """How a hidden count is printed: "<k" when it is below k, else "*" (never "<k" for a count that is not)."""
    return f"<{k}" if n < k else HIDDEN_MARK


def small_cells(counts: dict[str, int], k: int) -> set[str]:
    """The keys whose count describes between 1 and k-1 students (0 describes nobody)."""
    return {key for key, n in counts.items() if 0 < n < k}


class CellSet:
    """The counts of one report and the sums that tie them; `solve()` says which to hide, `mark()` how each reads.

    Cells are named by any hashable key. A cell added `shown` is public whatever its size (a school's total at the
    school level): it is a known number in its sums, never hidden. A cell may also be one no table prints, derived
    from others (the students in some special group): hidden, it is one no sum gives back. A solved cell stays as
    solved: cells added after a solve (a report's charts and breakdowns, after its table, which the XLSX export
    publishes alone) are solved against it, hiding only cells of their own.
    """

    def __init__(self, k: int):
        self.k = k
        self._values: dict[Hashable, int] = {}
        self._lines: list[list[Hashable]] = []
        self._hidden: set[Hashable] = set()
        self._settled: set[Hashable] = set()  # decided: shown or hidden for good

    def add(self, key: Hashable, n: int, *, shown: bool = False) -> None:
        self._values[key] = n
        if shown:
            self._settled.add(key)

    def line(self, keys: Iterable[Hashable], *, size: int | None = None) -> None:
        """Cells tied by a sum the reader knows or can work out (a row's completed count, a column's total, or a
        further cell of the line). A line of `size` students, 1 to k-1, hides every cell of it."""
        keys = list(keys)
        self._lines.append(keys)
        if size is not None and 0 < size < self.k:
            self.hide(keys)

    def hide(self, keys: Iterable[Hashable]) -> None:
        """Hide these cells whatever their size (those settled already stay as they are)."""
        self._hidden.update(key for key in keys if key not in self._settled)

    def solve(self) -> set[Hashable]:
        """Hide every small cell, then a partner beside any cell a sum would give back; the cells hidden."""
        order = {key: i for i, key in enumerate(self._values)}
        hidden = self._hidden
        hidden.update(key for key, n in self._values.items() if 0 < n < self.k and key not in self._settled)
        changed = True
        while changed:
            changed = False
            for keys in self._lines:
                if sum(key in hidden for key in keys) != 1:
                    continue
                free = [key for key in keys if key not in hidden and key not in self._settled]
                if free:  # none: the sum's other cells are public at this level (a school's only grade)
                    hidden.add(min(free, key=lambda key: (self._values[key], order[key])))
                    changed = True
        self._settled.update(self._values)
        return set(hidden)

    def is_hidden(self, key: Hashable) -> bool:
        return key in self._hidden

    def mark(self, key: Hashable) -> str | None:
        """The mark a hidden cell is printed as ("<k" or "*", see `mark`); None for a cell shown as it is."""
        if key not in self._hidden:
            return None
        n = self._values.get(key)
        return HIDDEN_MARK if n is None else mark(n, self.k)


def suppress_table(
    rows: list[dict[str, int]], columns: Sequence[str], k: int, *, total: dict[str, int] | None = None
) -> tuple[list[set[str]], set[str]]:
    """Which cells of each row (and of the totals row, when it is suppressed too) to hide: one table alone.

    `total` is the totals row when it describes fewer students than the school level (it is then suppressed like
    any row); None when the totals row stays visible (a school or more), in which case each column must not be left
    with one hidden cell either, since the visible total would give it away. A row's size is the sum of its cells.
    """
    cells = CellSet(k)
    for i, row in enumerate(rows):
        for column in columns:
            cells.add((i, column), row[column])
    if total is not None:
        for column in columns:
            cells.add(("total", column), total[column])
    for i, row in enumerate(rows):
        cells.line([(i, column) for column in columns], size=sum(row[column] for column in columns))
    if total is not None:
        cells.line([("total", column) for column in columns], size=sum(total[column] for column in columns))
    for column in columns:
        cells.line([(i, column) for i in range(len(rows))] + ([("total", column)] if total is not None else []))
    hidden = cells.solve()
    return (
        [{column for column in columns if (i, column) in hidden} for i in range(len(rows))],
        {column for column in columns if ("total", column) in hidden},
    )
