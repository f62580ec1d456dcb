"""Shared by every test folder.

The tests mirror the package (tests/reward_service/<package>/), and pytest puts tests/ on sys.path for
the shared helpers (service_fixtures, the test scorers): without the project root ahead of it,
`import reward_service` would find the tests' folder of that name (a namespace package) whenever the
project root is not already on the path (`pytest` run as a script, or from another directory).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[1])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
