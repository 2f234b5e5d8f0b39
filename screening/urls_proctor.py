"""See screening/urls.py. Live class completion for proctors (screening.views_proctor)."""

from django.urls import path

from screening import views_proctor

urlpatterns: list = [
    path("campaigns/<int:campaign_id>/proctor/", views_proctor.proctor_classes, name="proctor_classes"),
    path("campaigns/<int:campaign_id>/classes/<int:class_id>/proctor/", views_proctor.proctor, name="proctor"),
    path(
        "campaigns/<int:campaign_id>/classes/<int:class_id>/proctor/status.json",
        views_proctor.proctor_status,
        name="proctor_status",
    ),
]
