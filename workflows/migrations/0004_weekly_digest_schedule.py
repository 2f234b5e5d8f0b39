"""The django-q2 schedule of the weekly digest to principals and district centres (workflows.digests): Mondays at
07:30 in settings.TIME_ZONE, before the school day's first meeting."""

import datetime
import zoneinfo

from django.conf import settings
from django.db import migrations

NAME = "workflows: weekly digest to principals and district centres"
FUNC = "workflows.digests.weekly_digest_send"


def next_monday_morning(now: datetime.datetime) -> datetime.datetime:
    local = now.astimezone(zoneinfo.ZoneInfo(settings.TIME_ZONE))
    monday = (local + datetime.timedelta(days=(7 - local.weekday()) % 7 or 7)).date()
    return datetime.datetime.combine(monday, datetime.time(7, 30), tzinfo=local.tzinfo)


def add_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.update_or_create(
        name=NAME,
        defaults={
            "func": FUNC, "schedule_type": "W", "repeats": -1,
            "next_run": next_monday_morning(datetime.datetime.now(datetime.UTC)),
        },
    )  # fmt: skip


def remove_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("workflows", "0003_task_queue_index"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(add_schedule, remove_schedule)]
