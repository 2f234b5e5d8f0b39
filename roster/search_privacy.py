"""Searches by identifier without the identifier in a URL: a student number or a name typed into a search box would
otherwise travel in the query string into the access logs of every proxy, the browser's history and the pinned
location. The search form POSTs its term; the term is kept in the session under a short random token and the page
redirects to `?s=<token>`, so pages, sorting and filters keep working on GET. A token this session does not hold is
an empty search. A term in the query string (an old link) is dropped by a redirect, never searched.

Used by the case list (workflows.views.CaseListView) and the scoped admin (roster.admin_scoped). May import: nothing
above roster.
"""

import secrets

from django.http import HttpResponseRedirect, QueryDict

SEARCH_PARAM = "s"  # the query parameter that carries the search token
SESSION_KEY = "search_terms"
KEPT = 20  # tokens a session holds; the oldest go first


def search_term(request) -> str | None:
    """The term behind the request's token; None without a token, "" for a token this session does not hold."""
    token = request.GET.get(SEARCH_PARAM)
    if token is None:
        return None
    return request.session.get(SESSION_KEY, {}).get(token, "")


def search_redirect(request, param: str, *, dropped: tuple[str, ...] = ()) -> HttpResponseRedirect | None:
    """The redirect that takes the term of `param` out of the URL, or None when the request carries none.

    A POST with `param` stores its term under a new token; a GET with `param` in the query string loses it. The
    redirect keeps the other parameters of the address (filters, sorting) and drops `dropped` ones (the page)."""
    if request.method == "POST" and param in request.POST:
        term = request.POST.get(param, "").strip()
    elif request.method in ("GET", "HEAD") and param in request.GET:
        term = None
    else:
        return None
    query = request.GET.copy()
    for name in (param, SEARCH_PARAM, *dropped):
        query.pop(name, None)
    if term:
        query[SEARCH_PARAM] = _keep(request, term)
    return HttpResponseRedirect(_address(request.path, query), status=303)


def _keep(request, term: str) -> str:
    terms = dict(request.session.get(SESSION_KEY, {}))
    token = secrets.token_urlsafe(8)
    terms[token] = term[:200]
    request.session[SESSION_KEY] = dict(list(terms.items())[-KEPT:])
    return token


def _address(path: str, query: QueryDict) -> str:
    return f"{path}?{query.urlencode()}" if query else path


class PostedSearchMixin:
    """For a list view with a search (viewflow's `get_search_term`): the term is posted, the URL carries a token."""

    search_param = "_search"

    def dispatch(self, request, *args, **kwargs):
        redirect = search_redirect(request, self.search_param, dropped=("page",))
        return redirect or super().dispatch(request, *args, **kwargs)

    def get_search_term(self):
        return search_term(self.request)
