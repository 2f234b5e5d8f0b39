from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CasesConfig(AppConfig):
    name = "cases"
    verbose_name = _("Cases")

    def ready(self):
        from cases import models, tiers

        tiers.rules()  # the tier rules are validated at start: a bad file stops the project with every problem listed
        from roster.roles import Level, Role
        from roster.scoping import register_scoped_model

        # Who reads case records (DESIGN §2): the school's psychology teachers and principal, the district centre and
        # auditor, the city centre; a homeroom teacher only the cases whose team they sit on. Admin roles never.
        readers = frozenset(
            {Role.PSYCHOLOGY_TEACHER, Role.PRINCIPAL, Role.HOMEROOM_TEACHER, Role.DISTRICT_CENTRE,
             Role.DISTRICT_AUDITOR, Role.CITY_CENTRE}
        )  # fmt: skip
        # Interview notes, follow-ups (with re-assessment scores) and referrals are clinical: never homeroom teachers.
        clinical = readers - {Role.HOMEROOM_TEACHER}
        team_roles = frozenset({Role.HOMEROOM_TEACHER})

        def grants(prefix: str) -> tuple[str, frozenset[str]]:
            # Break the glass (EmergencyAccess): a clinical role reads one case outside its scope, and its records,
            # for a day. Restricted notes stay withheld (the school's psychology teachers' and principal's alone).
            return (f"{prefix}emergency_grants", models.EMERGENCY_ACCESS_ROLES)

        def paths(prefix: str) -> dict[str, str]:
            return {
                Level.CITY: f"{prefix}school__district__city",
                Level.DISTRICT: f"{prefix}school__district",
                Level.SCHOOL: f"{prefix}school",
                Level.CLASS: f"{prefix}student__school_class",
            }

        register_scoped_model(
            models.Case, paths(""), readers=readers, team_roles=team_roles, team="team", grants=grants("")
        )
        for model in (models.CaseTeamMember, models.InterventionPlan, models.ParentContact, models.TierChange,
                      models.Closure):  # fmt: skip
            register_scoped_model(
                model, paths("case__"), readers=readers, team_roles=team_roles, team="case__team",
                grants=grants("case__"),
            )  # fmt: skip
        register_scoped_model(
            models.PlanMeasure, paths("plan__case__"), readers=readers, team_roles=team_roles, team="plan__case__team",
            grants=grants("plan__case__"),
        )  # fmt: skip
        for model in (models.FollowUp, models.Referral, models.CrisisAlert, models.SafetyAssessment,
                      models.SupportRequest, models.CoordinationEntry):  # fmt: skip
            # A crisis alert carries a result (why it was raised): never for homeroom teachers, who get the care
            # instruction instead (cases.alerts).
            register_scoped_model(model, paths("case__"), readers=clinical, grants=grants("case__"))
        register_scoped_model(
            models.ClosureEvaluation, paths("closure__case__"), readers=readers, team_roles=team_roles,
            team="closure__case__team", grants=grants("closure__case__"),
        )  # fmt: skip
        # A note marked restricted: the school's psychology teachers and principal only (not the district centre).
        register_scoped_model(
            models.InterviewNote, paths("case__"), readers=clinical,
            restricted=("restricted", frozenset({Role.PSYCHOLOGY_TEACHER, Role.PRINCIPAL})), grants=grants("case__"),
        )  # fmt: skip
        # Who broke the glass, when and why: the district's centre and auditor, the city centre, the case school's
        # principal (the grantee sees their own grants through cases.selectors, not through this).
        register_scoped_model(
            models.EmergencyAccess, paths("case__"),
            readers=frozenset({Role.PRINCIPAL, Role.DISTRICT_CENTRE, Role.DISTRICT_AUDITOR, Role.CITY_CENTRE}),
        )  # fmt: skip
