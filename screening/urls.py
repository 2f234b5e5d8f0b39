"""Screening pages for staff (under /screening/); each area keeps its own URL module."""

from django.urls import include, path

app_name = "screening"

urlpatterns = [
    path("", include("screening.urls_reports")),  # campaign list, flagged students, completion/tier report
    path("", include("screening.urls_proctor")),  # live class completion for proctors
    path("", include("screening.urls_checklist")),  # the homeroom teacher's checklist (排查表)
]
