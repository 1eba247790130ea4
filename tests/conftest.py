"""Lab tests (marker `lab`) need root, Open vSwitch, Mininet and a few tools.

Where they are missing the lab tests are skipped with the reason; under CI (CI set in
the environment) that is an error instead, so a missing install step cannot pass green.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

# The controller runs on os-ken's eventlet hub; so do the tests that run the app.
os.environ.setdefault("OSKEN_HUB_TYPE", "eventlet")

import pytest  # noqa: E402

SETUP = "run: bash scripts/setup.sh, then use .venv/bin/python"


def lab_missing() -> str | None:
    """Why the Mininet lab cannot run here, or None."""
    if os.geteuid() != 0:
        return "the Mininet lab needs root"
    try:
        import mininet.net  # noqa: F401
    except ImportError:
        return f"Mininet is not importable from {sys.executable} ({SETUP})"
    try:
        r = subprocess.run(["ovs-vsctl", "-t", "2", "show"], capture_output=True, timeout=5)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return f"Open vSwitch is not installed or not answering ({SETUP})"
    if r.returncode != 0:
        return f"Open vSwitch is not running ({SETUP})"
    for tool in ("iperf3", "ethtool", "ping", "tc"):
        if not shutil.which(tool):
            return f"{tool} is missing ({SETUP})"
    return None


CHROMIUM = "/usr/bin/chromium"


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not os.path.exists(CHROMIUM):
        return f"Debian's Chromium is not installed at {CHROMIUM} ({SETUP})"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return f"Playwright is not importable from {sys.executable} ({SETUP})"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for marker, missing in (("lab", lab_missing), ("browser", browser_missing)):
        marked = [i for i in items if i.get_closest_marker(marker)]
        if not marked:
            continue
        why = missing()
        if why is None:
            continue
        if os.environ.get("CI"):
            raise pytest.UsageError(f"{marker} tests cannot run in CI: {why}")
        for item in marked:
            item.add_marker(pytest.mark.skip(reason=why))
