from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CasesConfig(AppConfig):
    name = "cases"
    verbose_name = _("Cases")

    def ready(self):
        from cases import access, tiers

        tiers.rules()  # the tier rules are validated at start: a bad file stops the project with every problem listed
        access.register_case_models()  # who reads which case record: cases.access, the one home of case access
