from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("workflows_app", "0013_parallel_lanes_and_children"),
    ]

    operations = [
        migrations.AddField(
            model_name="workflowinstance",
            name="revision",
            field=models.PositiveBigIntegerField(db_default=1, default=1, editable=False),
        ),
    ]
