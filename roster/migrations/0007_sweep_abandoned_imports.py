"""The daily sweep of roster files left in import jobs and upload temporary files (roster.import_jobs)."""

from django.db import migrations

SCHEDULE = "roster: delete abandoned roster import files"


def add_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.update_or_create(
        name=SCHEDULE,
        defaults={"func": "roster.import_jobs.sweep_abandoned_imports", "schedule_type": "D", "repeats": -1},
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=SCHEDULE).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
        ("roster", "0006_user_sessions"),
    ]

    operations = [migrations.RunPython(add_schedule, remove_schedule)]
