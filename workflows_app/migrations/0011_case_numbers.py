"""Case numbers stored on the instance, drawn at random from now on (issue 13, finding 2).

Instances started before keep the number they were given and may have been told to citizens:
BP-2026-000042 (the workflow's prefix, the year the instance started in the site's time zone,
its integer key, zero-padded to six digits), written into the new column.
"""

from django.db import migrations, models
from django.utils import timezone

BATCH = 1000


def number_existing(apps, schema_editor):
    Instance = apps.get_model("workflows_app", "WorkflowInstance")
    rows = (
        Instance.objects.filter(models.Q(case_number__isnull=True) | models.Q(case_number=""))
        .values_list("pk", "created_at", "definition__case_prefix")
        .order_by("pk")
    )
    batch = []
    for pk, created_at, prefix in rows.iterator(chunk_size=BATCH):
        number = f"{prefix}-{timezone.localtime(created_at).year}-{pk:06d}"
        batch.append(Instance(pk=pk, case_number=number))
        if len(batch) == BATCH:
            Instance.objects.bulk_update(batch, ["case_number"])
            batch = []
    Instance.objects.bulk_update(batch, ["case_number"])


class Migration(migrations.Migration):
    dependencies = [
        ("workflows_app", "0010_token_scopes_and_acting_for"),
    ]

    operations = [
        migrations.AddField(
            model_name="workflowinstance",
            name="case_number",
            field=models.CharField(editable=False, max_length=32, null=True),
        ),
        migrations.RunPython(number_existing, migrations.RunPython.noop, elidable=False),
        migrations.AlterField(
            model_name="workflowinstance",
            name="case_number",
            field=models.CharField(editable=False, max_length=32, unique=True),
        ),
    ]
