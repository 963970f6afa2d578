from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from ...authoring.publishing import load_files
from ...definitions import InvalidDefinition
from .validate_workflow import database_not_ready


class Command(BaseCommand):
    help = (
        "Validate and load workflow definitions and service files (JSON or YAML). All or nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", metavar="FILE")

    def handle(self, *args, files, **options):
        try:
            report = load_files(files)
        except InvalidDefinition as exc:
            for problem in exc.problems:
                self.stderr.write(str(problem))
            raise CommandError(
                f"{len(exc.problems)} problem(s) found; nothing was loaded."
            ) from None
        except DatabaseError as exc:
            raise database_not_ready(exc) from None
        for line in report.lines:
            self.stdout.write(line)
        self.stdout.write(self.style.SUCCESS(f"Loaded {len(files)} file(s)."))
