"""Roles as object permissions, for Viewflow's task queues.

A task a role holds at a school (triage for its psychology teachers, approvals for its principals) carries the
permission `roster.role_<role>` with the school as its object. `has_perm(user, "roster.role_principal", school)` is
true when the user holds that role at the school, or at the district or city above it for roles held there. Without
an object the answer is always no: a role never reaches another school's tasks. Nothing else is answered here.
"""

from __future__ import annotations

from roster import scoping
from roster.models import RoleAssignment, School

PREFIX = "roster.role_"


def role_permission(role: str) -> str:
    return f"{PREFIX}{role}"


class RolePermissionBackend:
    def authenticate(self, request, **credentials):
        return None  # permissions only; logging in is ModelBackend's

    def has_perm(self, user, perm: str, obj=None) -> bool:
        if not perm.startswith(PREFIX) or not isinstance(obj, School):
            return False
        if not getattr(user, "is_active", False) or user.is_anonymous:
            return False
        return scoping.holds_over(user, perm[len(PREFIX) :], obj)

    def get_all_permissions(self, user, obj=None) -> set[str]:
        """The role permissions the user holds somewhere: Viewflow's queue lists tasks by these, and our scoping layer
        then narrows the list to the user's schools."""
        if not getattr(user, "is_active", False) or user.is_anonymous:
            return set()
        return {
            role_permission(role)
            for role in RoleAssignment.objects.filter(user_id=user.pk).values_list("role", flat=True)
        }
