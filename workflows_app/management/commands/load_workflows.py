from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from ...authoring.publishing import UnknownWorkflow, load_files
from ...definitions import InvalidDefinition
from .validate_workflow import database_not_ready


class Command(BaseCommand):
    help = (
        "Validate and load workflow definitions and service files (JSON or YAML). All or nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", metavar="FILE")
        parser.add_argument(
            "--public",
            action="append",
            default=[],
            metavar="WORKFLOW",
            help="publish this workflow as public (anonymous starts and status) even when its "
            "file does not say so, e.g. the seed's building-permit for a portal (repeatable)",
        )

    def handle(self, *args, files, public, **options):
        try:
            report = load_files(files, public=public)
        except UnknownWorkflow as exc:
            raise CommandError(str(exc)) from None
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
