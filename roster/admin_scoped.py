"""The admin mixin every scoped model admin uses: querysets and permissions come from roster.scoping."""

from django.http import Http404
from django.utils.translation import gettext_lazy as _

from roster import scoping


class ScopedAdminMixin:
    """Lists, detail pages, history and saves limited to roster.scoping; out-of-scope looks like missing (404).

    Nothing is deleted from the admin: students leave, staff are deactivated, history stays.
    """

    def get_queryset(self, request):
        return scoping.visible(request.user, super().get_queryset(request))

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404(_("Not found, or not in your scope."))
        return obj

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
