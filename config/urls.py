from django.contrib import admin
from django.urls import include, path

from workflows.viewsets import site as work_site

urlpatterns = [
    path("", include("roster.urls")),
    path("s/", include("screening.urls_portal")),
    path("screening/", include("screening.urls")),
    path("reports/", include("workflows.urls_reports")),  # case dashboards and ledgers
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("work/", work_site.urls),  # the task inbox and the case pages (Viewflow's Material frontend)
]
