"""The individual report of one student under /reports/students/ (app "reports"; see workflows/urls_reports.py)."""

from django.urls import path

from workflows import views_individual as views

urlpatterns = [
    path("students/<int:student_id>/", views.student_report, name="student_report"),
    path("students/<int:student_id>/print/", views.student_report_print, name="student_report_print"),
    path("students/<int:student_id>/report.pdf", views.student_report_pdf, name="student_report_pdf"),
]
