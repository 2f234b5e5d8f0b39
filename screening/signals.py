"""Domain events of the screening app. `workflows` listens; screening never imports it (DESIGN §4)."""

from django.dispatch import Signal

# Sent after commit for every result of tier yellow or above: kwargs `result` (a ScreeningResult) and `in_batch`.
# `in_batch` is True when the result was also sent in a `students_flagged` batch just before (a large import or a
# re-scoring): a receiver that handles batches skips it then; one that does not simply handles every result.
student_flagged = Signal()

# Sent for a batch of flagged results, inside the transaction of a chunk: kwargs `results` (a list). For receivers
# that do per batch what would cost a statement per result (opening cases).
students_flagged = Signal()
