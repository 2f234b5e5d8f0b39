"""Filters of the case list: school, tier and status, each school offered only if the user's scope reaches it.

May import: roster, screening, cases.
"""

import django_filters
from django.utils.translation import gettext_lazy as _

from cases.models import Case, CaseStatus
from roster import scoping
from roster.models import School
from screening.definitions import RiskTier


def _schools(request):
    # The choices are scoped like the rows: a district auditor is offered the district's schools, a teacher one.
    if request is None:
        return School.objects.none()
    return scoping.visible(request.user, School).order_by("code")


class CaseFilter(django_filters.FilterSet):
    school = django_filters.ModelChoiceFilter(label=_("School"), queryset=_schools)
    tier = django_filters.ChoiceFilter(label=_("Tier"), choices=RiskTier.choices)
    status = django_filters.ChoiceFilter(label=_("Status"), choices=CaseStatus.choices)

    class Meta:
        model = Case
        fields = ["school", "tier", "status"]
