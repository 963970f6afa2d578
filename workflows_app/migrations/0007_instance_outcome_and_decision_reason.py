from django.db import migrations, models


class Migration(migrations.Migration):
    """R2: an instance records its latest decision and, when it ends, its outcome; a person's
    decision carries a reason for the applicant (the former comment) and a note for staff."""

    dependencies = [
        ("workflows_app", "0006_wake_index_for_sqlite"),
    ]

    operations = [
        migrations.AddField(
            model_name="workflowinstance",
            name="decision",
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="workflowinstance",
            name="outcome",
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.RenameField(model_name="steprun", old_name="comment", new_name="reason"),
        migrations.AddField(
            model_name="steprun",
            name="note",
            field=models.TextField(blank=True),
        ),
    ]
