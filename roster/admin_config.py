from django.contrib.admin.apps import AdminConfig


class ScopedAdminConfig(AdminConfig):
    """Replaces django.contrib.admin in INSTALLED_APPS so that `admin.site` is the scoped site."""

    default_site = "roster.admin_site.ScopedAdminSite"
