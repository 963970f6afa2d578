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

    def handle(self, *args, name, scope, workflow, **options):
        if not name.strip():
            raise CommandError("the token needs a name")
        token, raw = ApiToken.issue(name.strip(), scopes=scope or [], workflows=workflow or [])
        scopes = ", ".join(token.scopes) or "all scopes"
        self.stderr.write(f"Token '{token.name}' created ({scopes}). It is shown only once:")
        self.stdout.write(raw)
