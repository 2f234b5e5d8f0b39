"""An index for the school queues: open tasks by the role permission they wait for.

viewflow_task is Viewflow's table and indexes neither column; without it a queue that matches nothing (a district
centre's, most of the time) reads every open task of the city. Created from here because the model is not ours.
"""

from django.db import migrations

CREATE = "CREATE INDEX IF NOT EXISTS workflows_task_queue ON viewflow_task (owner_permission, status, owner_permission_obj_pk)"
DROP = "DROP INDEX IF EXISTS workflows_task_queue"


class Migration(migrations.Migration):
    dependencies = [("workflows", "0002_workflow_tick_schedule"), ("viewflow", "0015_task_scheduled")]

    operations = [migrations.RunSQL(CREATE, DROP)]
