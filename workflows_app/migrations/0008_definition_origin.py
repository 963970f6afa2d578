from django.db import migrations, models


class Migration(migrations.Migration):
    """Where a version was published from, so loading an unchanged file can say that a newer
    version published in the admin stays the newest."""

    dependencies = [
        ("workflows_app", "0007_instance_outcome_and_decision_reason"),
    ]

    operations = [
        migrations.AddField(
            model_name="workflowdefinition",
            name="origin",
            field=models.CharField(
                blank=True,
                help_text="Where it was published from: a file, or a draft in the admin.",
                max_length=300,
            ),
        ),
    ]
