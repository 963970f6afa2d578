"""A python service for the caller-kill test (tests/test_inline.py), named in its
HMS_PYTHON_SERVICES: the first call holds the process until it is killed."""

import os
import time
from pathlib import Path


def hold_first_call(instance, step):
    """The first call marks HMS_TEST_MARKER and sleeps; every later call answers `ok`."""
    marker = Path(os.environ["HMS_TEST_MARKER"])
    if not marker.exists():
        marker.write_text(str(os.getpid()))
        time.sleep(120)
    return {"result": "ok", "data": {"pid": os.getpid()}}
