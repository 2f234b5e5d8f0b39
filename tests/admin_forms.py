"""Build the POST a person would send from an admin change page, from the page's own context."""

import datetime


def _post_value(value):
    if isinstance(value, list | tuple):
        return [getattr(v, "pk", v) for v in value]
    if isinstance(value, datetime.date | datetime.datetime):
        return value.isoformat()
    return "" if value is None else getattr(value, "pk", value)


def _form_fields(form, data):
    for name in form.fields:
        if form.fields[name].disabled:
            continue
        value = form[name].value()
        if isinstance(value, bool):
            if value:
                data[form.add_prefix(name)] = "on"
            continue
        data[form.add_prefix(name)] = _post_value(value)


def admin_change_data(response) -> dict:
    """The change form's current values, inlines included, as POST data."""
    data: dict = {}
    _form_fields(response.context["adminform"].form, data)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        management = formset.management_form
        for name in management.fields:
            data[management.add_prefix(name)] = management[name].value()
        for form in formset.forms:
            _form_fields(form, data)
    return data
