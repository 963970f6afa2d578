"""The staff roles: `Workflow authors`, `Reviewers` and `Supervisors`, with exactly their permissions.

Staff also need `is_staff` to open the admin; reviewers work in the inbox (/tasks/), which
decides by task assignment, so their group holds no admin permission at all.
"""

from django.db import migrations

ROLES = {
    "Workflow authors": [
        "add_workflowdraft",
        "change_workflowdraft",
        "delete_workflowdraft",
        "view_workflowdraft",
        "publish_workflowdraft",
        "add_draftstep",
        "change_draftstep",
        "delete_draftstep",
        "view_draftstep",
        "view_workflowdefinition",
        "add_service",
        "change_service",
        "view_service",
    ],
    "Reviewers": [],
    "Supervisors": [
        "view_workflowinstance",
        "view_workflowdefinition",
        "cancel_instance",
        "retry_instance",
        "reassign_task",
        "add_delegation",
        "change_delegation",
        "delete_delegation",
        "view_delegation",
    ],
}


def create_roles(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    # Permissions are normally created after all migrations (post_migrate); make them now.
    config = apps.get_app_config("workflows_app")
    config.models_module = True
    create_permissions(config, apps=apps, verbosity=0)
    config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        perms = Permission.objects.filter(
            content_type__app_label="workflows_app", codename__in=codenames
        )
        found = set(perms.values_list("codename", flat=True))
        missing = set(codenames) - found
        if missing:
            raise RuntimeError(f"permissions missing for {name}: {sorted(missing)}")
        group.permissions.set(perms)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("workflows_app", "0002_drafts"),
    ]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
