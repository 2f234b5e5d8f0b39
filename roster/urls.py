from django.contrib.auth import views as auth_views
from django.urls import path

from roster import two_factor, views, views_access, views_notifications

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
]
