"""Reading a page's query parameters the way every report and list page does.

May import: nothing of ours.
"""

from __future__ import annotations

from django.http import Http404


def int_param(params, name: str) -> int | None:
    """An id or number from the query string; None when absent or empty; 404 when it is not a whole number (a forged
    or mangled link finds nothing, as a forbidden one does)."""
    raw = params.get(name)
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise Http404 from None
