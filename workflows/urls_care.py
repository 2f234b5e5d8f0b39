"""Care beyond screening (issue 20) under /care/ (app "care"): the signal queue and concerns, mentors' students,
talks and home visits with their coverage. The special-group ledgers sit with the other ledgers under /reports/."""

from workflows.urls_mentoring import urlpatterns as mentoring
from workflows.urls_signals import urlpatterns as signals

app_name = "care"
urlpatterns = [*signals, *mentoring]
