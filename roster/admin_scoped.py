"""The admin mixin every scoped model admin uses: querysets and permissions come from roster.scoping."""

from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import PAGE_VAR, SEARCH_VAR, ChangeList
from django.http import Http404
from django.utils.translation import gettext_lazy as _

from roster import audit, scoping, search_privacy
from roster.models import AccessAction, AccessOutcome


class PostedSearchChangeList(ChangeList):
    """The admin's list searched by the term behind the session's token (roster.search_privacy), never by a term in
    the URL: a student number or a name in `?q=` would land in every proxy's access log."""

    search_by_post = True  # templates/admin/search_form.html posts the search box

    def __init__(self, request, *args, **kwargs):
        self._posted_term = search_privacy.search_term(request) or ""
        super().__init__(request, *args, **kwargs)

    @property
    def query(self) -> str:
        return self._posted_term

    @query.setter
    def query(self, value) -> None:
        pass  # Django's ChangeList reads `q` from the URL: ignored here

    def get_filters_params(self, params=None):
        lookup_params = super().get_filters_params(params)
        lookup_params.pop(search_privacy.SEARCH_PARAM, None)  # the token is no field lookup
        return lookup_params


class ScopedAdminMixin:
    """Lists, detail pages, history and saves limited to roster.scoping; out-of-scope looks like missing (404).

    Nothing is deleted from the admin: students leave, staff are deactivated, history stays.

    With `reads_logged` (a child's records: students, screening results), every list page, record page and refusal
    writes one access-log entry (roster.audit) before the page is shown.
    """

    reads_logged = False

    def get_queryset(self, request):
        return scoping.visible(request.user, super().get_queryset(request))

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if self.reads_logged:
            self._log_read(request, obj, object_id)
        if obj is None:
            raise Http404(_("Not found, or not in your scope."))
        return obj

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # The admin runs the form in a transaction it rolls back on a refusal: the reading is logged before it, or
        # a refused POST would leave no entry.
        if self.reads_logged and object_id is not None:
            self.get_object(request, unquote(object_id))
        return super().changeform_view(request, object_id, form_url, extra_context)

    def _log_read(self, request, obj, object_id) -> None:
        pk = obj.pk if obj is not None else object_id
        done = request.__dict__.setdefault("_admin_reads_logged", set())
        if (self.model, str(pk)) in done:  # a page that looks the record up twice is still one reading
            return
        done.add((self.model, str(pk)))
        reading = request.method in ("GET", "HEAD")
        allowed = obj is not None and (reading or self.has_change_permission(request, obj))
        action = AccessAction.VIEW if reading else AccessAction.CHANGE
        outcome = AccessOutcome.OK if allowed else AccessOutcome.DENIED
        audit.record(action, object_type=audit.label(self.model), object_ids=[str(pk)[:40]], outcome=outcome)

    def get_changelist(self, request, **kwargs):
        return PostedSearchChangeList

    def changelist_view(self, request, extra_context=None):
        if self.has_view_or_change_permission(request):  # (refused below otherwise)
            redirect = search_privacy.search_redirect(request, SEARCH_VAR, dropped=(PAGE_VAR,))
            if redirect is not None:
                return redirect
        response = super().changelist_view(request, extra_context)
        changelist = getattr(response, "context_data", {}).get("cl") if self.reads_logged else None
        if changelist is not None:  # (a redirect or an error page lists nothing)
            ids = [row.pk for row in changelist.result_list]
            audit.record(AccessAction.LIST, object_type=audit.label(self.model), object_ids=ids)
        return response

    def has_module_permission(self, request):
        return self.admin_site.has_permission(request)

    def has_view_permission(self, request, obj=None):
        if not self.admin_site.has_permission(request):
            return False
        return obj is None or scoping.can_view(request.user, obj)

    def has_change_permission(self, request, obj=None):
        if not self.admin_site.has_permission(request):
            return False
        if obj is None:
            return scoping.may_change_some(request.user, self.model)
        return scoping.can_change(request.user, obj)

    def has_add_permission(self, request):
        return self.admin_site.has_permission(request) and scoping.may_change_some(request.user, self.model)

    def has_delete_permission(self, request, obj=None):
        return False

    def history_view(self, request, object_id, extra_context=None):
        self.get_object(request, object_id)  # 404 unless in scope; simple-history would fall back to old rows
        return super().history_view(request, object_id, extra_context)

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        self.get_object(request, object_id)
        return super().history_form_view(request, object_id, version_id, extra_context)
