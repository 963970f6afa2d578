from django.core.management.base import BaseCommand

from ...runtime import retention


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    return str(n)


class Command(BaseCommand):
    help = (
        "Remove the personal data (payload, documents, free text) of ended instances past "
        "their workflow's retention; keep case numbers, steps and times (docs/records.md)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run", action="store_true", help="Say what would go; change nothing."
        )
        parser.add_argument("--batch-size", type=int, default=retention.DEFAULT_BATCH)
        parser.add_argument(
            "--limit", type=int, default=None, help="Purge at most this many instances this run."
        )

    def handle(self, *args, dry_run=False, batch_size=retention.DEFAULT_BATCH, limit=None, **_):
        verb = "would purge" if dry_run else "purged"

        def progress(number, done):
            shown = ", ".join(done.cases[:3]) + (", …" if len(done.cases) > 3 else "")
            self.stdout.write(
                f"batch {number}: {verb} {done.instances} instance(s) ({shown}); "
                f"{done.documents} document(s), {_size(done.document_bytes)}"
            )

        report = retention.purge_expired(
            dry_run=dry_run, batch_size=batch_size, limit=limit, progress=progress
        )
        what = "Dry run: would purge" if dry_run else "Purged"
        self.stdout.write(
            f"{what} {report.instances} instance(s): {report.documents} document(s) "
            f"({_size(report.document_bytes)}) deleted, free text of "
            f"{report.events_redacted} event(s) removed; {report.held} on legal hold kept."
        )
