from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ScreeningConfig(AppConfig):
    name = "screening"
    verbose_name = _("Screening")

    def ready(self):
        from roster.roles import Level, Role
        from roster.scoping import register_scoped_model
        from screening.models import ScreeningResult

        # DESIGN §5: answers are read by psychology teachers and above, never by homeroom teachers or admins.
        register_scoped_model(
            ScreeningResult,
            {
                Level.CITY: "student__school__district__city",
                Level.DISTRICT: "student__school__district",
                Level.SCHOOL: "student__school",
                Level.CLASS: "student__school_class",
            },
            readers=frozenset(
                {Role.PSYCHOLOGY_TEACHER, Role.PRINCIPAL, Role.DISTRICT_CENTRE, Role.DISTRICT_AUDITOR, Role.CITY_CENTRE}
            ),
        )

        # roster issues access codes only to students who still have a screening to answer; screening knows who.
        from roster.access_codes import register_answered_check
        from screening.campaigns import students_with_nothing_to_answer

        register_answered_check(students_with_nothing_to_answer)

        # Red results alert the school's psychology teachers, principal and district centre at once.
        from screening import alerts
        from screening.signals import student_flagged, students_flagged

        student_flagged.connect(alerts.on_student_flagged, dispatch_uid="screening.alerts.on_student_flagged")
        students_flagged.connect(alerts.on_students_flagged, dispatch_uid="screening.alerts.on_students_flagged")
