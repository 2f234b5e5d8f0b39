"""The special-groups ledger and the 一人一案 help-record pages under /reports/ledgers/groups/ (app "reports")."""

from django.urls import path

from workflows import views_groups as views

urlpatterns = [
    path("ledgers/groups/", views.group_ledger, name="ledger_groups"),
    path("ledgers/groups/xlsx/", views.group_ledger_xlsx, name="ledger_groups_xlsx"),
    path("ledgers/groups/records/new/", views.help_record_new, name="help_record_new"),
    path("ledgers/groups/records/mine/", views.help_records_mine, name="help_records_mine"),
    path("ledgers/groups/records/<int:pk>/", views.help_record, name="help_record"),
    path("ledgers/groups/records/<int:pk>/change/", views.help_record_change, name="help_record_change"),
    path("ledgers/groups/records/<int:pk>/end/", views.help_record_end, name="help_record_end"),
]
