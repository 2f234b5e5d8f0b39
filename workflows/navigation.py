"""The one site header's navigation (templates/includes/site_header.html): the same links, in the same order, on our
pages, the administration site and the task frontend, each shown only to whom it lets in, and the section the page
belongs to marked.

Who may go where is decided by the gates the pages themselves use (roster.scoping, the case flow's view permission,
workflows.dashboards); this module only lists them. It sits in workflows, the top layer, because it links to every
app. May import: roster, screening, cases.
"""

from dataclasses import dataclass

from django.urls import reverse
from django.utils.translation import pgettext_lazy

HOME, TASKS, CASES, REPORTS, SCREENING, DUTY, SCHOOL_YEAR, ADMIN, NOTIFICATIONS = (
    "home", "tasks", "cases", "reports", "screening", "duty", "school_year", "admin", "notifications",
)  # fmt: skip
MY_STUDENTS = "my_students"  # a mentor's, homeroom or subject teacher's students (issue 20, /care/students/)

# The task frontend's pages that are about one case or the list of cases; every other page under /work/ (the inbox,
# the queue, the archive, a task) belongs to the tasks.
_CASE_PAGES = frozenset(
    {
        "process_list", "process_detail", "process_chart", "case_review", "case_reopen", "parent_contact_extra",
        "support_request", "coordination_add", "referral_feedback", "referral_by_staff", "hand_over",
        "emergency_access",
    }
)  # fmt: skip

# The signal queue and concerns (issue 20, workflows.urls_signals): one section.
SIGNALS = "signals"

# Address prefixes of our own sections (config.urls, roster.urls).
_PREFIXES = (
    ("/care/signals/", SIGNALS),
    ("/care/concern/", SIGNALS),
    ("/care/hotline/", SIGNALS),
    ("/care/students/", MY_STUDENTS),
    ("/reports/", REPORTS),
    ("/screening/", SCREENING),
    ("/duty/", DUTY),
    ("/school-year/", SCHOOL_YEAR),
    ("/admin/", ADMIN),
    ("/notifications/", NOTIFICATIONS),
)


@dataclass(frozen=True)
class NavLink:
    key: str
    label: str
    url: str
    css: str  # the link's class: stable hooks for the browser tests
    current: bool = False


def nav_section(request) -> str:
    """The section of the site the requested page belongs to ("" when none: an alert page, the account pages)."""
    path = request.path_info
    if path == "/":
        return HOME
    if path.startswith("/work/alerts/"):
        return ""
    if path.startswith("/work/"):
        match = getattr(request, "resolver_match", None)
        return CASES if match is not None and match.url_name in _CASE_PAGES else TASKS
    return next((section for prefix, section in _PREFIXES if path.startswith(prefix)), "")


def _signals_link(user) -> tuple:
    """The signal queue for those who read one (psychology teachers, principals, centres); for those who only raise
    concerns (homeroom and subject teachers, mentors), the concern page. No query: the scope."""
    from cases.care_access import CONCERN_ROLES, QUEUE_ROLES
    from roster import scoping

    roles = scoping.scope_for(user).roles
    if roles & QUEUE_ROLES:
        return pgettext_lazy("site navigation", "Signals"), reverse("care:signals"), "signals-link"
    if roles & CONCERN_ROLES:
        return pgettext_lazy("site navigation", "Raise a concern"), reverse("care:concern_new"), "concern-link"
    return "", "", "signals-link"


def site_nav_for(request) -> list[NavLink]:
    """The header's links for the signed-in person, in the header's order (the notifications last: the header adds
    their unread count); [] for anyone else.

    Access: a link is listed only where its page's own gate lets the person in: the top bar's existing rules
    (roster.context_processors, workflows.context_processors), roster.scoping for the admin and the screening pages.
    No query beyond the scope, read once per request.
    """
    from cases.care_selectors import has_students_page
    from roster import rollover, scoping
    from roster.context_processors import duty_roster
    from screening.campaigns import may_see_campaigns
    from workflows.context_processors import case_work

    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return []
    work, duty = case_work(request), duty_roster(request)
    screening = reverse("screening:campaigns") if may_see_campaigns(user) else ""  # not mentors, subject teachers
    admin = reverse("admin:index") if scoping.can_use_admin(user) else ""
    school_year = reverse("rollover") if rollover.may_roll_over(user) else ""  # district and city admins
    my_students = reverse("care:my_students") if has_students_page(user) else ""  # mentors and teachers
    links = [
        (HOME, pgettext_lazy("site navigation", "Home"), reverse("home"), "home-link"),
        (MY_STUDENTS, pgettext_lazy("site navigation", "My students"), my_students, "my-students-link"),
        (TASKS, pgettext_lazy("site navigation", "Tasks"), work["case_inbox_url"], "case-inbox-link"),
        (CASES, pgettext_lazy("site navigation", "Cases"), work["case_list_url"], "case-list-link"),
        (SIGNALS, *_signals_link(user)),
        (REPORTS, pgettext_lazy("site navigation", "Reports"), work["dashboard_url"], "dashboard-link"),
        (SCREENING, pgettext_lazy("site navigation", "Screening"), screening, "screening-link"),
        (DUTY, pgettext_lazy("site navigation", "Duty roster"), duty["duty_roster_url"], "duty-roster-link"),
        (SCHOOL_YEAR, pgettext_lazy("site navigation", "School year"), school_year, "school-year-link"),
        (ADMIN, pgettext_lazy("site navigation", "Administration"), admin, "admin-link"),
        (NOTIFICATIONS, pgettext_lazy("site navigation", "Notifications"), reverse("notifications"),
         "notifications-link"),
    ]  # fmt: skip
    section = nav_section(request)
    return [NavLink(key, label, str(url), css, key == section) for key, label, url, css in links if str(url)]
