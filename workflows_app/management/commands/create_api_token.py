from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from ...models import ApiToken


class Command(BaseCommand):
    help = "Create an API token and print it (its last line of output is the token)."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument(
            "--scope",
            action="append",
            choices=ApiToken.Scope.values,
            help="limit the token to this scope (repeatable); default: every scope",
        )
        parser.add_argument(
            "--workflow", action="append", help="limit the token to this workflow key (repeatable)"
        )
        parser.add_argument(
            "--acting-for",
            metavar="USERNAME",
            help="decisions on human tasks made with this token are this person's, with their "
            "checks (group, separation of duties, the step's outcomes)",
        )

    def handle(self, *args, name, scope, workflow, acting_for, **options):
        if not name.strip():
            raise CommandError("the token needs a name")
        person = None
        if acting_for:
            person = get_user_model().objects.filter(username=acting_for).first()
            if person is None:
                raise CommandError(f"no user '{acting_for}'")
        token, raw = ApiToken.issue(
            name.strip(), scopes=scope or [], workflows=workflow or [], acting_for=person
        )
        scopes = ", ".join(token.scopes) or "all scopes"
        if person:
            scopes += f", acting for {person.get_username()}"
        self.stderr.write(f"Token '{token.name}' created ({scopes}). It is shown only once:")
        self.stdout.write(raw)
