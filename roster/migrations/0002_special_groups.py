"""The fixed special-group vocabulary (issue 3 lists it; import files name these in Chinese)."""

from django.db import migrations

SPECIAL_GROUPS = [
    ("left_behind", "留守儿童"),
    ("single_parent", "单亲家庭"),
    ("disability", "残疾"),
    ("hardship", "困境"),
    ("prior_disorder", "心理障碍史"),
    ("orphan", "孤儿"),
]


def load(apps, schema_editor):
    SpecialGroup = apps.get_model("roster", "SpecialGroup")
    for code, name in SPECIAL_GROUPS:
        SpecialGroup.objects.update_or_create(code=code, defaults={"name": name})


class Migration(migrations.Migration):
    dependencies = [("roster", "0001_initial")]
    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
