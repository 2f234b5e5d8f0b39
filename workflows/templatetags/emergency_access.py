"""The case page's banner for a reader under emergency access: until when, and that every reading is logged.

May import: roster, screening, cases.
"""

from django import template

from cases import services as case_services

register = template.Library()


@register.inclusion_tag("workflows/_emergency_banner.html", takes_context=True)
def emergency_access_banner(context, case):
    """One query: the user's own unexpired grant to the case (cases.services.emergency_access_current)."""
    request = context.get("request")
    user = getattr(request, "user", None)
    return {"grant": case_services.emergency_access_current(user, case) if user is not None else None}
