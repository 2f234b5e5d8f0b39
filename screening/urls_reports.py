"""See screening/urls.py: campaign list, flagged students, completion/tier report (screening.views_reports)."""

from django.urls import path

from screening import views_reports

urlpatterns = [
    path("campaigns/", views_reports.campaign_list, name="campaigns"),
    path("campaigns/<int:campaign_id>/flagged/", views_reports.flagged, name="flagged"),
    path("campaigns/<int:campaign_id>/report/", views_reports.report, name="report"),
    path("campaigns/<int:campaign_id>/report.xlsx", views_reports.report_xlsx, name="report_xlsx"),
    path("campaigns/<int:campaign_id>/report/print/", views_reports.report_print, name="report_print"),
    path("campaigns/<int:campaign_id>/report.pdf", views_reports.report_pdf, name="report_pdf"),
]
