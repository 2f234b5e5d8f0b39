"""The top bar's links to the task inbox and the case list, for people who work or review cases (lazy: no query on
pages that do not show them)."""

from django.utils.functional import SimpleLazyObject


def case_work(request):
    def url(name):
        def link():
            from workflows.flows import CaseFlow

            user = getattr(request, "user", None)
            if user is None or not CaseFlow.instance.has_view_permission(user):
                return ""
            return CaseFlow.instance.reverse(name)

        return SimpleLazyObject(link)

    def dashboard():
        from django.urls import reverse

        from workflows.dashboards import has_dashboard

        user = getattr(request, "user", None)
        return reverse("reports:dashboard") if user is not None and has_dashboard(user) else ""

    return {"case_inbox_url": url("inbox"), "case_list_url": url("process_list"),
            "dashboard_url": SimpleLazyObject(dashboard)}  # fmt: skip


def site_nav(request):
    """The one site header's links and the section the page belongs to (workflows.navigation), lazy."""

    from workflows import navigation

    return {
        "site_nav": SimpleLazyObject(lambda: navigation.site_nav_for(request)),
        "nav_section": SimpleLazyObject(lambda: navigation.nav_section(request)),
    }
