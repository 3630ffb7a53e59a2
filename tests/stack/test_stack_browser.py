"""A person in a browser: log in, trigger the weekly retraining from its form and watch it;
approve a waiting promotion on the Required Actions page and see the champion change.

Headless Debian Chromium (/usr/bin/chromium, installed by `make test`) driven by Playwright;
Playwright never downloads a browser of its own here.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pytest
from playwright.sync_api import Page, expect

from tests.stack.airflow_api import AirflowApi
from tests.stack.compose import ROOT
from tests.stack.native import NativeStack
from tests.stack.registry_view import champion, mlflow_client, version_of_run
from tests.stack.runs import (
    APPROVAL,
    APPROVAL_DATES,
    APPROVER,
    STALL_TIMEOUT,
    WEEKLY,
    drop_catchup_runs,
    trigger_then_unpause,
    weekly,
)

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
APPROVAL_DAG = weekly(APPROVAL)
APPROVE = "approve"
# The docs show the page this test fills in; each run of the test refreshes the picture.
DOCS_PICTURE = ROOT / "docs" / "images" / "approval-page.png"
# Tall enough for the whole question, form and buttons without the panel's own scrolling.
PICTURE_VIEWPORT = {"width": 1400, "height": 1400}
VIEWPORT = {"width": 1400, "height": 900}


@pytest.fixture
def page(stack: NativeStack) -> Iterator[Page]:
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), f"{CHROMIUM} missing: `make test` installs Debian's chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport=VIEWPORT)
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


@pytest.fixture
def mlflow(stack: NativeStack) -> Iterator[Any]:
    with mlflow_client(stack) as client:
        yield client


def open_required_action(page: Page, subject: str) -> None:
    """As a person finds it from the home page: Browse > Required Actions, then the subject."""
    page.get_by_role("button", name="Browse").click()
    page.get_by_role("menuitem", name="Required Actions").click()
    page.wait_for_url("**/required_actions")
    # Answered questions of earlier runs are listed too; a subject names its version.
    page.get_by_role("link", name=subject, exact=True).click()
    page.wait_for_url(f"**/dags/{APPROVAL_DAG}/runs/**/tasks/{APPROVE}/required_actions")


def picture_of_the_question(page: Page, paths: list[Path]) -> None:
    """The task's page down to the Approve and Reject buttons, at 1400 px wide."""
    page.set_viewport_size(PICTURE_VIEWPORT)
    footer = page.locator("footer", has=page.get_by_role("button", name="Approve", exact=True))
    footer.scroll_into_view_if_needed()
    box = footer.bounding_box()
    assert box, "the Approve button's footer is not on the page"
    height = min(box["y"] + box["height"] + 16, PICTURE_VIEWPORT["height"])
    clip = {"x": 0, "y": 0, "width": PICTURE_VIEWPORT["width"], "height": height}
    first, *copies = paths
    page.screenshot(path=first, clip=clip)
    for copy in copies:
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(first, copy)
    page.set_viewport_size(VIEWPORT)


def test_approve_a_promotion_on_the_required_actions_page(
    stack: NativeStack, api: AirflowApi, page: Page, mlflow: Any
) -> None:
    # A forced candidate always asks; before it, the champion of test_stack_approval's first
    # run, or none when this module runs on its own (then the candidate is the first).
    api.wait_for_dag(APPROVAL_DAG)
    before = champion(mlflow, APPROVAL)
    reason = "the browser test ships it"
    conf = {"force_promote": True, "reason": reason}
    run_id = trigger_then_unpause(api, APPROVAL_DAG, f"{APPROVAL_DATES[3]}T02:00:00Z", conf)
    api.wait_for_task(APPROVAL_DAG, run_id, APPROVE, {"awaiting_input"}, STALL_TIMEOUT)
    version = version_of_run(mlflow, APPROVAL, run_id).version
    over = f"over version {before}" if before else "as the first champion"
    subject = f"{APPROVAL}: promote version {version} {over}?"
    assert api.hitl_detail(APPROVAL_DAG, run_id, APPROVE)["subject"] == subject

    log_in(page, stack)
    open_required_action(page, subject)
    assert unquote(page.url).endswith(f"/runs/{run_id}/tasks/{APPROVE}/required_actions")
    # The question with its evidence: the metrics table, the gate's checks, the reason.
    expect(page.get_by_text(subject, exact=True)).to_be_visible()
    expect(page.get_by_role("cell", name="roc_auc (primary)")).to_be_visible()
    expect(page.get_by_text("Gate checks and guardrails")).to_be_visible()
    expect(page.get_by_text(reason)).to_be_visible()
    comment = "roc_auc and every gate check read; approved from the browser"
    field = page.get_by_role("group").filter(has=page.get_by_text("Comment", exact=True))
    field.get_by_role("textbox").fill(comment)
    picture_of_the_question(page, [stack.settings.artifacts / "approval-page.png", DOCS_PICTURE])
    page.get_by_role("button", name="Approve", exact=True).click()
    expect(page.get_by_text(f"{APPROVE} response successful")).to_be_visible()

    # The run goes on to `promote`; wait on the REST API with the page closed (as above).
    page.goto("about:blank")
    run = api.wait_for_run(APPROVAL_DAG, run_id, STALL_TIMEOUT)
    states = {ti["task_id"]: ti["state"] for ti in api.task_instances(APPROVAL_DAG, run_id)}
    assert run["state"] == "success", states
    answer = api.hitl_detail(APPROVAL_DAG, run_id, APPROVE)
    assert answer["chosen_options"] == ["Approve"]
    assert answer["responded_by_user"]["name"] == APPROVER

    # The champion changed to the approved version, with who approved it and why.
    assert champion(mlflow, APPROVAL) == version != before
    tags = version_of_run(mlflow, APPROVAL, run_id).tags
    assert tags["ct.decision"] == "promoted"
    assert tags["ct.approval"] == "approved"
    assert tags["ct.approved_by"] == APPROVER
    assert tags["ct.approval_comment"] == comment
    assert f"approved by {APPROVER}: {comment}" in tags["ct.decision_reason"]

    # The run's note (written by the listener as the run ended) says so, and its page shows it.
    note = run["note"] or ""
    replaces = f"(replaces version {before})" if before else "(the first champion)"
    assert note.startswith(f"**PROMOTED** version {version} {replaces}"), note
    page.goto(f"{stack.settings.api_url}/dags/{APPROVAL_DAG}/runs/{quote(run_id, safe='')}")
    expect(page.get_by_text(f"PROMOTED version {version}").first).to_be_visible()
