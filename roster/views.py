"""The signed-in home page: who I am, my roles, and the part of the organisation I am responsible for."""

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import render

from roster import scoping, selectors
from roster.roles import Role


@login_required
def home(request, extra: dict | None = None):
    """`extra`: what an app above roster adds (workflows: the link to a teacher's students, issue 20)."""
    return render(request, "roster/home.html", {**home_context(request), **(extra or {})})


def home_context(request) -> dict:
    """What the roster home shows (the work home of crisis roles, in workflows, shows it below their work)."""
    user = request.user
    schools = selectors.school_overview_for(user)
    school_page = Paginator(schools, 50).get_page(request.GET.get("page"))
    # Classes are listed when the user's view is one school or less (a principal, a homeroom teacher).
    classes = selectors.class_overview_for(user) if school_page.paginator.count <= 1 else None
    scope = scoping.scope_for(user)
    narrow = not scope.unrestricted and bool(scope.roles) and scope.roles <= {Role.MENTOR, Role.SUBJECT_TEACHER}
    return {
        "assignments": selectors.role_assignments_for(user),
        "school_page": school_page,
        "classes": classes,
        "students": selectors.student_counts_for(user),
        "can_use_admin": scoping.can_use_admin(user),
        # Mentors and subject teachers alone (issue 20) run and read no screening, and their scope is their students
        # (workflows adds the link to them): no screening card, no school overview.
        "shows_screening": not narrow,
        "shows_scope": not narrow,
    }
