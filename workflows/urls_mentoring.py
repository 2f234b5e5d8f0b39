"""Pages of /care/ (workflows/urls_care.py): a teacher's students, talks and home visits, and their coverage."""

from django.urls import path

from workflows import views_mentoring as views

urlpatterns = [
    path("students/", views.my_students, name="my_students"),
    path("students/<int:student_id>/", views.student_page, name="student"),
    path("students/<int:student_id>/talk/", views.talk_new, name="talk_new"),
    path("students/<int:student_id>/visit/", views.visit_new, name="visit_new"),
    path("coverage/", views.coverage, name="coverage"),
]
