from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from ...models import WorkflowInstance, case_number_key
from ...runtime import export


class Command(BaseCommand):
    help = (
        "Write a case's whole record as a zip (record.json, summary.txt, documents/) and "
        "print its path (docs/records.md)."
    )

    def add_arguments(self, parser):
        parser.add_argument("case_number", help="e.g. BP-2026-7KQ3MX (or the instance id)")
        parser.add_argument("--output", help="the zip to write (default var/exports/CASE-TIME.zip)")

    def handle(self, *args, case_number: str, output: str | None = None, **options):
        instance = _find(case_number)
        stamp = timezone.now().strftime("%Y%m%dT%H%M%S")
        default = (
            Path(settings.BASE_DIR) / "var" / "exports" / f"{instance.case_number}-{stamp}.zip"
        )
        path = export.export_case(instance, Path(output) if output else default)
        if instance.purged_at:
            self.stdout.write(
                f"{instance.case_number} was purged on {instance.purged_at:%Y-%m-%d}."
            )
        self.stdout.write(str(path))


def _find(text: str) -> WorkflowInstance:
    key = case_number_key(text) or text.strip()
    found = WorkflowInstance.objects.filter(case_number=key).first()
    if found is None:
        try:
            found = WorkflowInstance.objects.filter(uuid=text.strip()).first()
        except Exception:  # noqa: BLE001 - not a UUID either
            found = None
    if found is None:
        raise CommandError(f"no case {text!r}")
    return found
