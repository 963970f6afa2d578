from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError

from ...authoring.publishing import load_files
from ...definitions import InvalidDefinition
from ...models import ApiToken

# The seed's own clients (examples/clients/) start and read building-permit without a token,
# as the original design's portal does: `make run` publishes it as public (the file, which
# must load verbatim, does not say so). The same as `load_workflows --public building-permit`.
DEMO_PUBLIC = ("building-permit",)

# Demo staff for trying the seed example by hand (development only).
DEMO_USERS = [
    # username, password, groups, is_superuser
    ("admin", "admin-demo-pw", [], True),
    # The full example's parallel reviews and site inspection go to these groups too.
    (
        "reviewer",
        "reviewer-demo-pw",
        ["plan-reviewers", "fire-officers", "inspectors", "Reviewers"],
        False,
    ),
    ("backup", "backup-demo-pw", ["backup-reviewers", "Reviewers"], False),
    ("supervisor", "supervisor-demo-pw", ["Supervisors"], False),
]


class Command(BaseCommand):
    help = "Load the examples in workflows/, create demo staff and an API token (development)."

    def add_arguments(self, parser):
        parser.add_argument("--port", default="8000")

    def handle(self, *args, port, **options):
        files = sorted(
            p
            for p in (Path(settings.BASE_DIR) / "workflows").iterdir()
            if p.suffix in {".json", ".yaml", ".yml"}
        )
        try:
            report = load_files(files, public=DEMO_PUBLIC)
        except InvalidDefinition as exc:
            raise CommandError("the examples do not load:\n" + str(exc)) from None
        for line in report.lines:
            self.stdout.write(f"  {line}")
        self._users()
        token = self._token()
        base = f"http://127.0.0.1:{port}"
        self.stdout.write(self.style.SUCCESS("\nReady. Open:"))
        for label, path in [
            ("Front page", "/"),
            ("Admin", "/admin/"),
            ("Task inbox", "/tasks/"),
            ("Board", "/board/"),
            ("API document", "/api/openapi.json"),
        ]:
            self.stdout.write(f"  {label:<14}{base}{path}")
        self.stdout.write(f"\nAPI token (demo): {token}")
        self.stdout.write(
            f"Try:\n  curl -s -X POST {base}/api/workflows/start -H 'Authorization: Bearer {token}'"
            " -H 'Content-Type: application/json'"
            ' -d \'{"workflowId": "address-change", "payload": {"applicant": "Ada",'
            ' "address": "1 Main St"}}\'\n'
        )
        self.stdout.write(
            f"{', '.join(DEMO_PUBLIC)} is public (no token needed): "
            f"HMS_URL={base} node examples/clients/startPermit.js"
        )

    def _users(self) -> None:
        User = get_user_model()
        self.stdout.write("\nDemo staff (username / password):")
        for username, password, groups, superuser in DEMO_USERS:
            user, created = User.objects.get_or_create(username=username)
            if created:
                user.set_password(password)
            user.is_staff = True
            user.is_superuser = superuser
            user.email = f"{username}@hms.example"
            user.save()
            for name in groups:
                user.groups.add(Group.objects.get_or_create(name=name)[0])
            self.stdout.write(f"  {username:<11} {password:<20} {', '.join(groups) or 'superuser'}")

    def _token(self) -> str:
        """The demo token, kept in var/demo-token so every `make run` can show it."""
        path = Path(settings.BASE_DIR) / "var" / "demo-token"
        if path.exists():
            raw = path.read_text().strip()
            if ApiToken.objects.filter(key_hash=ApiToken.hash(raw), revoked_at=None).exists():
                return raw
        _, raw = ApiToken.issue("demo")
        path.parent.mkdir(exist_ok=True)
        path.write_text(raw + "\n")
        path.chmod(0o600)
        return raw
