from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.utils.functional import lazy
from django.views.generic import RedirectView

from roster import passwords
from workflows import views_alerts, views_home
from workflows.viewsets import site as work_site

urlpatterns = [
    # Browsers ask for /favicon.ico where a page names no icon (PDFs, files): the one icon, static/favicon.svg.
    path("favicon.ico", RedirectView.as_view(url=lazy(static, str)("favicon.svg"), permanent=True)),
    path("", views_home.home, name="home"),  # work first for crisis roles, else roster's home (roster.views.home)
    path("alerts/live/", views_alerts.alerts_live, name="alerts_live"),  # the live banner's feed
    path("work/alerts/<int:pk>/", views_alerts.alert_page, name="crisis_alert"),
    path("", include("roster.urls")),
    # A password of the holder's own: after an administrator typed one, and from a set-password link (roster.passwords).
    path("accounts/password/change/", passwords.PasswordChangeRequiredView.as_view(), name="password_change_required"),
    path("accounts/password/set/<uidb64>/<token>/", passwords.PasswordSetView.as_view(), name="password_set"),
    path("accounts/email/", passwords.account_email, name="account_email"),
    path("s/", include("screening.urls_portal")),
    path("screening/", include("screening.urls")),
    path("reports/", include("workflows.urls_reports")),  # case dashboards and ledgers
    path("care/", include("workflows.urls_care")),  # signals, concerns, mentors' talks, home visits (issue 20)
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("work/", work_site.urls),  # the task inbox and the case pages (Viewflow's Material frontend)
]
