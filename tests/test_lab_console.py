"""The web console end to end: a real controller and Mininet lab (topologies/lab-meters.yaml,
policies/lab-meters.yaml), Debian's headless Chromium driven by Playwright.

An architect signs in with a named write token, sees every switch on the map and the
OPDs' rates, makes a mistake in the caps form (told in plain words, nothing changes),
then lowers OPD C's download cap: the new meter rate is on the switch (ovs-ofctl
dump-meters) and the event list shows the change with the token's name.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CHROMIUM
from tests.test_lab_policies import Env, running

pytestmark = [pytest.mark.lab, pytest.mark.browser]

WAIT_MS = 30_000  # a busy 2-core machine: the page refreshes every 5 s


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with running(tmp_path_factory.mktemp("kendali-lab-console") / "state", "ktc") as e:
        yield e


@contextmanager
def browser_page() -> Iterator[Any]:
    """A page of Debian's Chromium; page.errors collects the script errors it throws."""
    from playwright.sync_api import sync_playwright

    from controller.lab.screenshots import CHROMIUM_ARGS

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.set_default_timeout(WAIT_MS)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.errors = errors
            yield page
        finally:
            browser.close()


def meter_rates(bridge: str) -> list[int]:
    out = subprocess.run(
        ["ovs-ofctl", "-O", "OpenFlow13", "dump-meters", bridge], capture_output=True, text=True, check=True
    ).stdout
    return [int(x) for x in re.findall(r"rate=(\d+)", out)]


def test_the_console_shows_the_network_and_changes_a_cap_on_the_switch(env: Env, tmp_path: Path) -> None:
    from controller.api.tokens import TokenFile
    from controller.core.compiler import meter_rate
    from controller.lab.screenshots import console_png

    secret = TokenFile(env.ctl.state_dir).add("architect", "write")  # the controller notices it on its next request
    before = env.policy("opd-c")
    bridge = env.lab.switch("edge-a").name  # OPD C's switch
    assert meter_rate(before["download_kbps"]) in meter_rates(bridge)

    with browser_page() as page:
        page.goto(env.ctl.url + "/")
        page.fill("#token", secret)
        page.click("#signin")
        page.wait_for_selector("#map svg g.switch")
        names = {g.get_attribute("data-name") for g in page.query_selector_all("#map svg g.switch")}
        assert names == {"core", "edge-a", "edge-b"}
        assert page.query_selector_all("#map svg g.switch.off") == []  # all connected
        assert len(page.query_selector_all("#map svg line.link")) == 2
        page.wait_for_selector('#usage .opd[data-opd="opd-c"]')

        # A cap below the minimum: refused, in words, naming the field; nothing changes.
        page.select_option("#opd", "opd-c")
        page.fill("#down", "0.01")
        page.click("#save")
        page.wait_for_selector("#form-msg.bad")
        said = page.text_content("#form-msg") or ""
        assert said.startswith("Not accepted.") and "Download cap" in said, said
        assert env.policy("opd-c") == before

        # 7.5 Mbit/s: the switch gets the new meter rate, the other fields are kept.
        page.fill("#down", "7.5")
        page.click("#save")
        page.wait_for_selector("#form-msg.good")
        after = env.policy("opd-c")
        assert after == {**before, "download_kbps": 7500}, (before, after)
        want = meter_rate(7500)
        deadline = time.monotonic() + 20
        while want not in (rates := meter_rates(bridge)):
            assert time.monotonic() < deadline, f"meter rate {want} never on {bridge}: {rates}\n{env.ctl.log_tail()}"
            time.sleep(0.2)
        assert meter_rate(before["download_kbps"]) not in rates
        assert meter_rate(before["upload_kbps"]) in rates  # the upload cap was kept

        # The event list shows the change and who made it.
        change = page.locator('#events li[data-kind="policy"]', has_text="architect").first
        change.wait_for()
        text = change.text_content() or ""
        assert "opd-c" in text and "20 Mbit/s → 7.5 Mbit/s" in text, text
        assert page.errors == []

    shot = console_png(env.ctl.url, secret, tmp_path / "console.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
