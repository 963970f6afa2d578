from django.core.management.base import BaseCommand

from ..demo_server import serve


class Command(BaseCommand):
    help = "Serve the demo HTTP services (validationSvc) on 127.0.0.1:9001 for `make run`."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=9001)

    def handle(self, *args, port, **options):
        server = serve(port=port)
        self.stdout.write(f"Demo services on http://127.0.0.1:{port}/validate")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
