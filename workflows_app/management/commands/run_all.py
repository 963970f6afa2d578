import os
import signal
import subprocess
import sys
import time

from django.core.management.base import BaseCommand

STOP_GRACE_SECONDS = 10


class Command(BaseCommand):
    help = "Run the web server, a qcluster and the demo services together; Ctrl-C stops all."

    def add_arguments(self, parser):
        parser.add_argument("--port", default="8000")
        parser.add_argument("--no-demo-services", action="store_true")

    def handle(self, *args, port, no_demo_services, **options):
        env = {
            **os.environ,
            "HMS_PUBLIC_URL": os.environ.get("HMS_PUBLIC_URL", f"http://127.0.0.1:{port}"),
        }
        manage = [sys.executable, "manage.py"]
        commands = [
            manage + ["runserver", f"127.0.0.1:{port}", "--noreload"],
            manage + ["qcluster"],
        ]
        if not no_demo_services:
            commands.append(manage + ["demo_services"])
        children = [subprocess.Popen(c, env=env, start_new_session=True) for c in commands]
        self.stdout.write(f"Serving on http://127.0.0.1:{port}/  (Ctrl-C stops everything)")
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        while not stopping and all(child.poll() is None for child in children):
            time.sleep(0.3)
        self._stop(children)

    def _stop(self, children) -> None:
        self.stdout.write("\nStopping the web server, the cluster and the demo services…")
        # SIGTERM to the main process only: sent to a qcluster's whole group, it can hang
        # django-q2's shutdown. Whatever is left after the grace period gets SIGKILL.
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
        self.stdout.write("Stopped.")
