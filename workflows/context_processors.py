"""The top bar's link to the task inbox, for people who work cases (lazy: no query on pages that do not show it)."""

from django.utils.functional import SimpleLazyObject


def case_work(request):
    def link():
        from workflows.flows import CaseFlow

        user = getattr(request, "user", None)
        if user is None or not CaseFlow.instance.has_view_permission(user):
            return ""
        return CaseFlow.instance.reverse("inbox")

    return {"case_inbox_url": SimpleLazyObject(link)}
