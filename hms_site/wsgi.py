"""WSGI entry point (gunicorn hms_site.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hms_site.settings")
application = get_wsgi_application()
