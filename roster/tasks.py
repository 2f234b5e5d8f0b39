"""django-q2 task entry points of the roster app: thin wrappers over services."""

from roster import exports
from roster.import_jobs import import_job_run


def import_job_check(job_id: int) -> None:
    import_job_run(job_id, write=False, background=True)


def import_job_apply(job_id: int) -> None:
    import_job_run(job_id, write=True, background=True)


def export_job_run(job_id: int) -> None:
    exports.export_job_run(job_id)
