"""Domain events of the screening app. `workflows` listens; screening never imports it (DESIGN §4)."""

from django.dispatch import Signal

# Sent after commit for every result of tier yellow or above: kwargs `result` (a ScreeningResult).
student_flagged = Signal()
