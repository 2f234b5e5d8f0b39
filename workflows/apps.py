"""Workflows: the Viewflow processes that drive a case, their task views, inbox, SLA timers.

May import: roster, screening, cases.
"""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WorkflowsConfig(AppConfig):
    name = "workflows"
    verbose_name = _("Case workflows")

    def ready(self):
        from roster.signals import role_removed
        from screening.signals import student_flagged, students_flagged
        from workflows import services

        # Every flagged student gets a case (one active case each) and its process (DESIGN §4: screening never
        # imports workflows; it announces, workflows listens).
        student_flagged.connect(services.on_student_flagged, dispatch_uid="workflows.on_student_flagged")
        students_flagged.connect(services.on_students_flagged, dispatch_uid="workflows.on_students_flagged")
        # A person whose role at a school is removed hands their open tasks there back to the school's queue.
        role_removed.connect(services.on_role_removed, dispatch_uid="workflows.on_role_removed")
        # 档案移交: a student with an active case moved school: the receiving school accepts the case.
        from roster.signals import student_moved
        from workflows import transfers

        student_moved.connect(transfers.on_student_moved, dispatch_uid="workflows.on_student_moved")
        # A leaver's case stops its clocks and gets "hand over or close"; a student back (or found at another
        # school) starts them again (workflows.leavers).
        from roster.signals import student_moved, students_left, students_returned
        from workflows import leavers

        students_left.connect(leavers.on_students_left, dispatch_uid="workflows.leavers.on_students_left")
        students_returned.connect(leavers.on_students_returned, dispatch_uid="workflows.leavers.on_students_returned")
        student_moved.connect(leavers.on_student_moved, dispatch_uid="workflows.leavers.on_student_moved")
        # A crisis alert leads to the case's triage task or its page (cases.alerts.alert_link; the pages live here).
        from cases import alerts

        alerts.register_link_resolver(_alert_work_link)
        # The ledgers' exports: a large one is written by the task worker (roster.exports keeps the jobs).
        from workflows import ledger_exports

        ledger_exports.register()
        # Signals (issue 20): a new red signal follows the crisis path at once (a red case and the crisis alert).
        from cases.signal_queue import signal_raised
        from workflows import signals as care_signals

        signal_raised.connect(care_signals.on_signal_raised, dispatch_uid="workflows.signals.on_signal_raised")


def _alert_work_link(alert) -> str:
    from workflows.views_alerts import alert_work_link  # the task pages' module, imported once the URLs are

    return alert_work_link(alert)
