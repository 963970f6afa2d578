import sys

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from ...authoring.publishing import parse_files
from ...definitions import InvalidDefinition


class Command(BaseCommand):
    help = (
        "Validate workflow definitions and service files without loading them; exit 1 on problems."
    )

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", metavar="FILE")

    def handle(self, *args, files, **options):
        try:
            parsed = parse_files(files)
        except InvalidDefinition as exc:
            for problem in exc.problems:
                self.stderr.write(str(problem))
            self.stderr.write(f"{len(exc.problems)} problem(s) found.")
            sys.exit(1)
        except DatabaseError as exc:
            raise database_not_ready(exc) from None
        for item in parsed:
            names = [f"workflow {w.id} ({len(w.steps)} steps)" for w in item.document.workflows]
            names += [f"service {s.name}" for s in item.document.services]
            self.stdout.write(f"{item.source}: OK — {', '.join(names) or 'empty'}")


def database_not_ready(exc: DatabaseError) -> CommandError:
    """Exit 2: services and users are checked against the database, which must be migrated."""
    return CommandError(
        f"cannot check services and users in the database ({exc}); "
        "run `python manage.py migrate` first",
        returncode=2,
    )
