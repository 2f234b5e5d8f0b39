from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("roster.urls")),
    path("s/", include("screening.urls_portal")),
    path("screening/", include("screening.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
]
