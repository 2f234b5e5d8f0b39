"""See screening/urls.py. The homeroom teacher's checklist (排查表) pages (screening.views_checklist)."""

from django.urls import path

from screening import views_checklist

urlpatterns = [
    path("campaigns/<int:campaign_id>/checklist/", views_checklist.checklist_classes, name="checklist_classes"),
    path(
        "campaigns/<int:campaign_id>/classes/<int:class_id>/checklist/",
        views_checklist.checklist_class,
        name="checklist_class",
    ),
    path(
        "campaigns/<int:campaign_id>/classes/<int:class_id>/checklist/<int:student_id>/",
        views_checklist.checklist_form,
        name="checklist_form",
    ),
]
