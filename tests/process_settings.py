"""Settings of the processes tests start (qcluster, runserver, gunicorn): the site's own, with
the clocks a test may shorten so that leases, redeliveries and health checks play out in
seconds instead of minutes, and the loopback addresses where tests run their HTTP services
allowed as service URLs (unless HMS_PRIVATE_URL_ALLOW says otherwise).

The site reads these tuning constants from nowhere but hms_site/settings.py; here each may be
overridden by an environment variable of the same name (e.g. HMS_STEP_LEASE_SECONDS=8).
"""

import os

from hms_site import settings as _site
from hms_site.settings import *  # noqa: F403

TUNABLE = (
    "HMS_STEP_LEASE_SECONDS",
    "HMS_REDELIVERY_SECONDS",
    "HMS_TIMER_INTERVAL",
    "HMS_CLAIM_RELEASE_SECONDS",
    "HMS_HEALTH_STALE_SECONDS",
    "HMS_HEALTH_SWEEP_STALE_SECONDS",
    "HMS_WEDGE_SECONDS",
)

for _name in TUNABLE:
    if _name in os.environ:
        globals()[_name] = type(getattr(_site, _name))(os.environ[_name])

if "HMS_PRIVATE_URL_ALLOW" not in os.environ:
    HMS_PRIVATE_URL_ALLOW = ["127.0.0.0/8", "::1"]

# A test's own shared cache folder (tests/test_shared_cache.py), where the site uses var/cache.
if os.environ.get("HMS_TEST_CACHE_DIR") and not REDIS_URL:  # noqa: F405
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": os.environ["HMS_TEST_CACHE_DIR"],
        }
    }
