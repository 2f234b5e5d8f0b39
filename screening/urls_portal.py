"""The student portal at the short URL /s/ (no account; a one-time access code)."""

from django.urls import path

from screening import views_portal

app_name = "portal"

urlpatterns = [
    path("", views_portal.start, name="start"),
    path("confirm/", views_portal.confirm, name="confirm"),
    path("answer/", views_portal.answer, name="answer"),
    path("done/", views_portal.done, name="done"),
    path("received/", views_portal.received, name="received"),
    path("help/", views_portal.help_page, name="help"),
    path("language/<str:code>/", views_portal.language, name="language"),
]
