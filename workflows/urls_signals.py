"""Pages of /care/ (workflows/urls_care.py): concerns, the signal queue and the hotline (workflows.views_signals)."""

from django.urls import path

from workflows import views_signals

urlpatterns: list = [
    path("concern/new/", views_signals.concern_new, name="concern_new"),
    path("concern/mine/", views_signals.my_concerns, name="my_concerns"),
    path("signals/", views_signals.signal_queue, name="signals"),
    path("signals/<int:pk>/", views_signals.signal_detail, name="signal_detail"),
    path("hotline/", views_signals.hotline, name="hotline"),
]
