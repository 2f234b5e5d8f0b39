"""The case dashboards under /reports/dashboard/ (app "reports"; see workflows/urls_reports.py)."""

from django.urls import path

from workflows import views_dashboards as views

urlpatterns = [
    path("dashboard/", views.dashboard, name="dashboard"),
    path("dashboard/overdue/", views.overdue, name="dashboard_overdue"),
]
