from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CasesConfig(AppConfig):
    name = "cases"
    verbose_name = _("Cases")

    def ready(self):
        from cases import access, tiers

        tiers.rules()  # the tier rules are validated at start: a bad file stops the project with every problem listed
        access.register_case_models()  # who reads which case record: cases.access, the one home of case access

        # A targeted re-screening of "the students with open signals" (screening.campaigns) asks cases who they are.
        from cases.rescreening import students_with_open_signals
        from screening.campaigns import register_open_signal_finder

        register_open_signal_finder(students_with_open_signals)

        # Attendance and leave (issue 20): roster announces, cases raises the signals (cases.absence_rules,
        # cases.leave_returns). The care rules are validated at start like the tier rules.
        from cases import absence_rules, care_rules, leave_returns
        from roster.signals import absences_recorded, leave_returned

        care_rules.rules()
        absences_recorded.connect(absence_rules.on_absences_recorded, dispatch_uid="cases.on_absences_recorded")
        leave_returned.connect(leave_returns.on_leave_returned, dispatch_uid="cases.on_leave_returned")
