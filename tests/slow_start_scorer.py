"""A test-only scorer whose import takes a while, so the service stays "starting" (not ready) for that long."""

import os
import time

from reward_service.scoring import score

time.sleep(float(os.environ.get("SLOW_START_S", "3")))

__all__ = ["score"]
