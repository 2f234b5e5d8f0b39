from django.contrib.auth import views as auth_views
from django.urls import path

from roster import (
    two_factor,
    views,
    views_access,
    views_duty,
    views_exports,
    views_notifications,
    views_rollover,
)

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/otp/", two_factor.otp_verify, name="otp_verify"),
    path("accounts/otp/setup/", two_factor.otp_setup, name="otp_setup"),
    path("admin-tools/access-slips/", views_access.access_slips, name="access_slips"),
    path("admin-tools/access-codes.xlsx", views_access.access_code_list, name="access_code_list"),
    path("notifications/", views_notifications.notification_list, name="notifications"),
    path("notifications/<int:pk>/read/", views_notifications.notification_read, name="notification_read"),
    path("notifications/read-all/", views_notifications.notification_read_all, name="notifications_read_all"),
    path("exports/<int:pk>/", views_exports.export_job, name="export_job"),
    path("exports/<int:pk>/progress/", views_exports.export_job_progress, name="export_job_progress"),
    path("exports/<int:pk>/download/", views_exports.export_download, name="export_download"),
    path("school-year/", views_rollover.rollover_page, name="rollover"),
    path("school-year/run/", views_rollover.rollover_run_view, name="rollover_run"),
    path("school-year/<int:pk>/", views_rollover.rollover_detail, name="rollover_detail"),
    path("school-year/<int:pk>/undo/", views_rollover.rollover_undo_view, name="rollover_undo"),
    path("duty/", views_duty.duty_index, name="duty"),
    path("duty/school/<int:pk>/", views_duty.duty_school, name="duty_school"),
    path("duty/school/<int:pk>/import/", views_duty.duty_import, name="duty_import"),
    path("duty/template.xlsx", views_duty.duty_import_template, name="duty_import_template"),
    path("duty/slots/<int:pk>/remove/", views_duty.duty_slot_remove, name="duty_slot_remove"),
    path("duty/district/<int:pk>/", views_duty.duty_district, name="duty_district"),
    path("duty/district/<int:pk>/calendar/seed/", views_duty.calendar_seed, name="duty_calendar_seed"),
    path(
        "duty/district/<int:pk>/calendar/<int:day_pk>/remove/",
        views_duty.calendar_day_remove,
        name="duty_calendar_day_remove",
    ),
]
