"""Every five minutes the task worker anchors the access log's head outside the database (roster.audit)."""

from django.db import migrations

SCHEDULE = "roster: anchor the access log's head"


def add_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.update_or_create(
        name=SCHEDULE,
        defaults={"func": "roster.audit.record_anchor", "schedule_type": "I", "minutes": 5, "repeats": -1},
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=SCHEDULE).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
        ("roster", "0009_account_takeover"),
    ]

    operations = [migrations.RunPython(add_schedule, remove_schedule)]
