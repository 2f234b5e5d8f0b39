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

        # Red results alert the school's psychology teachers, principal and district centre at once.
        from screening import alerts
        from screening.signals import student_flagged, students_flagged

        student_flagged.connect(alerts.on_student_flagged, dispatch_uid="screening.alerts.on_student_flagged")
        students_flagged.connect(alerts.on_students_flagged, dispatch_uid="screening.alerts.on_students_flagged")
