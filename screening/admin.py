"""Admin for instruments and rule sets: readable by admin roles; city roles add new versions (never edit one)."""

import yaml
from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from roster import scoping
from roster.roles import Role
from screening.definitions import DefinitionError, parse_instrument, parse_ruleset
from screening.models import Instrument, RuleSet

# Seed/DESIGN: the city admin and the city crisis centre configure instruments and campaigns city-wide.
DEFINITION_EDITORS = frozenset({Role.CITY_ADMIN, Role.CITY_CENTRE})


def may_add_definitions(user) -> bool:
    scope = scoping.scope_for(user)
    return scope.unrestricted or bool(scope.roles & DEFINITION_EDITORS)


class DefinitionForm(forms.ModelForm):
    text = forms.CharField(
        label=_("Definition (YAML)"),
        widget=forms.Textarea(attrs={"rows": 30, "cols": 100, "style": "font-family: monospace"}),
        help_text=_(
            "Copy a shipped file from screening/instruments/ or screening/rulesets/ and give it a new version."
        ),
    )
    parse = None  # set by subclasses

    class Meta:
        fields: list[str] = []

    def clean_text(self):
        try:
            data = yaml.safe_load(self.cleaned_data["text"])
            parsed = self.parse(data)
        except yaml.YAMLError as error:
            raise forms.ValidationError(_("Not valid YAML: %(error)s") % {"error": error}) from None
        except DefinitionError as error:
            raise forms.ValidationError(str(error)) from None
        if self._meta.model.objects.filter(code=parsed.code, version=parsed.version).exists():
            raise forms.ValidationError(
                _("%(code)s version %(version)s already exists: definitions never change, give this one a new version.")
                % {"code": parsed.code, "version": parsed.version}
            )
        self.parsed, self.data_dict = parsed, data
        return self.cleaned_data["text"]


class InstrumentForm(DefinitionForm):
    class Meta(DefinitionForm.Meta):
        model = Instrument

    def parse(self, data):
        return parse_instrument(data)

    def save(self, commit=True):
        p = self.parsed
        self.instance.code, self.instance.version, self.instance.definition = p.code, p.version, self.data_dict
        self.instance.name, self.instance.source, self.instance.licence = p.name["zh-hans"], p.source, p.licence
        return super().save(commit)


class RuleSetForm(DefinitionForm):
    class Meta(DefinitionForm.Meta):
        model = RuleSet

    def parse(self, data):
        instruments = {}
        for stored in Instrument.objects.all():
            instruments.setdefault(stored.code, stored.parsed())  # newest version first (Meta.ordering)
        return parse_ruleset(data, instruments)

    def save(self, commit=True):
        p = self.parsed
        self.instance.code, self.instance.version, self.instance.definition = p.code, p.version, self.data_dict
        self.instance.population = p.population
        return super().save(commit)


class DefinitionAdmin(admin.ModelAdmin):
    list_display = ["code", "version", "created_at"]
    readonly_fields = ["code", "version", "created_at", "definition_yaml"]

    def get_form(self, request, obj=None, **kwargs):
        return self.add_form if obj is None else super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        return ["text"] if obj is None else self.readonly_fields

    @admin.display(description=_("definition"))
    def definition_yaml(self, obj):
        from django.utils.html import format_html

        text = yaml.safe_dump(obj.definition, allow_unicode=True, sort_keys=False)
        return format_html('<pre style="white-space: pre-wrap">{}</pre>', text)

    def has_module_permission(self, request):
        return self.admin_site.has_permission(request)

    def has_view_permission(self, request, obj=None):
        return self.admin_site.has_permission(request)

    def has_add_permission(self, request):
        return self.admin_site.has_permission(request) and may_add_definitions(request.user)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Instrument)
class InstrumentAdmin(DefinitionAdmin):
    add_form = InstrumentForm
    list_display = ["code", "version", "name", "created_at"]


@admin.register(RuleSet)
class RuleSetAdmin(DefinitionAdmin):
    add_form = RuleSetForm


from screening import admin_campaigns, admin_results  # noqa: E402,F401  (each admin area in its own module)
