"""A person in a browser: log in, open the weekly retraining, trigger it from its form, watch.

Headless Debian Chromium (/usr/bin/chromium, installed by `make test`) driven by Playwright;
Playwright never downloads a browser of its own here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest
from playwright.sync_api import Page

from tests.stack.airflow_api import AirflowApi
from tests.stack.native import NativeStack
from tests.stack.runs import STALL_TIMEOUT, WEEKLY, drop_catchup_runs

pytestmark = pytest.mark.stack

CHROMIUM = Path("/usr/bin/chromium")
# As root with no display and a closed network: no sandbox, no GPU, no calls home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
FORM_TRAINING_DAYS = 7  # not the YAML's 21: the run's conf shows the form's value arrived
UI_TIMEOUT_MS = 60_000


@pytest.fixture
def page(stack: NativeStack) -> Iterator[Page]:
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), f"{CHROMIUM} missing: `make test` installs Debian's chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(UI_TIMEOUT_MS)
            yield page
        finally:
            browser.close()


def log_in(page: Page, stack: NativeStack) -> None:
    """The simple auth manager's own login form, with the password from the stack's .env."""
    variables = stack.settings.variables
    page.goto(f"{stack.settings.api_url}/")
    page.get_by_label("Username").fill(variables["AIRFLOW_ADMIN_USERNAME"])
    page.get_by_label("Password").fill(variables["AIRFLOW_ADMIN_PASSWORD"])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{stack.settings.api_url}/")


def trigger_from_form(page: Page, stack: NativeStack, artifacts: Path) -> str:
    """Open the DAG, press Trigger, change the training window, submit; the new run's id."""
    page.goto(f"{stack.settings.api_url}/dags/{WEEKLY}")
    page.get_by_role("button", name="Trigger").first.click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Training window (days)").fill(str(FORM_TRAINING_DAYS))
    page.screenshot(path=artifacts / "browser-trigger-form.png")
    dialog.get_by_role("button", name="Trigger").click()
    # The UI opens the page of the run it created: /dags/<dag>/runs/<run id>.
    page.wait_for_url(f"**/dags/{WEEKLY}/runs/**")
    return unquote(page.url.rsplit("/runs/", 1)[1])


def run_state_shown(page: Page, run_url: str) -> str:
    """The run's state as its page shows it (the first state badge is the run's own)."""
    page.goto(run_url)
    badge = page.get_by_test_id("state-badge").first
    badge.wait_for()
    return badge.inner_text().strip().lower()


def test_trigger_the_weekly_retraining_from_the_ui(
    stack: NativeStack, api: AirflowApi, page: Page
) -> None:
    artifacts = stack.settings.artifacts
    api.wait_for_dag(WEEKLY)
    api.unpause(WEEKLY)  # as the REST test left it; a no-op when it ran first
    drop_catchup_runs(api, WEEKLY)
    log_in(page, stack)
    run_id = trigger_from_form(page, stack, artifacts)
    run_url = page.url

    # The run page re-renders every few seconds while the run is active, a core's worth of
    # Chromium on a 2-core machine: wait on the REST API with the page closed, then look.
    page.goto("about:blank")
    run = api.wait_for_run(WEEKLY, run_id, STALL_TIMEOUT)
    state = run_state_shown(page, run_url)
    page.screenshot(path=artifacts / "browser-run.png", full_page=True)
    tis = {ti["task_id"]: ti["state"] for ti in api.task_instances(WEEKLY, run_id)}
    assert state == "success", f"the UI shows {state!r}; tasks: {tis}"

    assert run["state"] == "success"
    assert run["triggered_by"] == "ui"
    assert run["conf"]["training_window_days"] == FORM_TRAINING_DAYS
    assert run["triggering_user_name"] == stack.settings.variables["AIRFLOW_ADMIN_USERNAME"]
