"""Case dashboards, ledgers and individual reports for staff (under /reports/); each area keeps its own URL module.

May import: roster, screening, cases, workflows.
"""

from django.urls import include, path

app_name = "reports"

urlpatterns = [
    path("", include("workflows.urls_dashboards")),  # open cases, overdue tasks, caseloads per school/district/city
    path("", include("workflows.urls_ledgers")),  # key-help, referral and closed-case ledgers (台账)
    path("", include("workflows.urls_individual")),  # one student's screenings and cases (个体评估报告)
]
