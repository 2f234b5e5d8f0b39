"""django-q2 task entry points of the workflows app: thin wrappers over services, queued by dotted name."""


def case_open_for_result(result_id: int) -> str:
    """Queued by `student_flagged` for a result flagged one at a time (the portal, a small import)."""
    from workflows.services import case_open_for_result as open_case

    return open_case(result_id)
