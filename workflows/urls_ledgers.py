"""The ledgers (台账) under /reports/ledgers/ (app "reports"; see workflows/urls_reports.py): each page and its XLSX."""

from django.urls import include, path

from workflows import views_ledgers as views

urlpatterns = [
    path("ledgers/key-help/", views.key_help, name="ledger_key_help"),
    path("ledgers/key-help/xlsx/", views.key_help_xlsx, name="ledger_key_help_xlsx"),
    path("ledgers/referrals/", views.referrals, name="ledger_referrals"),
    path("ledgers/referrals/xlsx/", views.referrals_xlsx, name="ledger_referrals_xlsx"),
    path("ledgers/closed/", views.closed, name="ledger_closed"),
    path("ledgers/closed/xlsx/", views.closed_xlsx, name="ledger_closed_xlsx"),
    path("", include("workflows.urls_groups")),  # the special-groups ledger and its help records (issue 20)
]
