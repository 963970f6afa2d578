from django.core.management.base import BaseCommand

from ...runtime.sweep import scheduled_sweep


class Command(BaseCommand):
    help = "Run the escalation sweep once, now (the scheduled job runs the same code)."

    def handle(self, *args, **options):
        acted = scheduled_sweep()
        self.stdout.write(f"Sweep done: {acted} overdue or due step run(s) handled.")
