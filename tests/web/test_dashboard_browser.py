"""The dashboard in a real browser: Debian's headless Chromium driven by Selenium through
chromedriver (installed by scripts/browser-up.sh when missing).

One walk through the product: sign in with a writer key, apply actions from the actions page,
publish an event through HTTP ingest and watch its execution appear in the live list without a
reload, open it (the event's ``<script>`` is shown as text, never run), requeue a dead letter;
then a reader key sees no control that changes anything, and the server refuses the change
anyway. Screenshots of the main pages go to ``$NEOACTIONS_SCREENSHOTS`` (``docs/screenshots``
refreshes the README's) or the test's temporary folder.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from neoactions.client import AsyncClient
from tests.conftest import ROOT, eventually_sync, require_service
from tests.web.conftest import WebServerProcess, webhook_env

pytestmark = pytest.mark.slow

CHROMIUM = Path(os.environ.get("NEOACTIONS_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("NEOACTIONS_CHROMEDRIVER", "/usr/bin/chromedriver"))
XSS = "<script>document.title='pwned';window.__xss=1</script><img src=x onerror=\"window.__xss=2\">"
ACTIONS_YAML = """actions:
  - name: order-alert
    trigger: {event_types: [orders.created]}
    handler: {type: python, config: {function: "shop.handlers:alert", channel: "#sales"}}
  - name: refuse-order
    trigger: {event_types: [orders.refused]}
    handler: {type: python, config: {function: "shop.handlers:boom"}}
    retry_policy: {max_retries: 1, backoff: fixed, initial_delay_ms: 50, jitter: false}
  - name: onboard
    trigger: {event_types: [customers.created]}
    handler:
      type: workflow
      config:
        steps:
          - name: greet
            handler: {type: python, config: {function: "shop.handlers:alert"}}
          - name: notify
            handler: {type: python, config: {function: "shop.handlers:alert"}}
            depends_on: [greet]
"""


def _browser_ready() -> str:
    """'' when chromium and chromedriver are there (installing them if needed), else why not."""
    if CHROMIUM.exists() and CHROMEDRIVER.exists():
        return ""
    try:
        proc = subprocess.run(
            ["bash", str(ROOT / "scripts" / "browser-up.sh")],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "scripts/browser-up.sh took longer than 15 minutes"
    if proc.returncode != 0:
        return f"scripts/browser-up.sh failed: {proc.stderr[-2000:]}"
    return ""


@dataclass
class Keys:
    tenant: str
    writer: str
    reader: str
    publisher: str


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[WebServerProcess, Keys]]:
    base = tmp_path_factory.mktemp("browser")
    env = {
        **webhook_env(base),
        "NEOACTIONS_FLOW_CONTROL": json.dumps({"breaker": {"failure_threshold": 0}}),
        "NEOACTIONS_POLL_INTERVAL_SECONDS": "0.2",
    }
    proc = WebServerProcess(str(base / "data"), base / "server.log", env)
    proc.start()
    try:
        yield proc, asyncio.run(_keys(proc.target))
    finally:
        proc.stop()


async def _keys(target: str) -> Keys:
    slug = f"shop_{uuid.uuid4().hex[:8]}"
    async with AsyncClient(target, timeout=30) as admin:
        await admin.create_tenant(slug)
        tokens = {}
        for role in ("writer", "reader", "publisher"):
            _, tokens[role] = await admin.create_api_key(f"dashboard {role}", role, tenant=slug)
    return Keys(slug, tokens["writer"], tokens["reader"], tokens["publisher"])


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    why = _browser_ready()
    require_service("headless Chromium and chromedriver", not why, why)
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("NEOACTIONS_SCREENSHOTS", "")
    folder = (ROOT / chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _css(driver: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(driver.find_elements(By.CSS_SELECTOR, selector))


def _text(driver: Any, selector: str) -> str:
    """The text of the first element ``selector`` finds ("" when none), read in one step (live
    views replace elements)."""
    script = "const e = document.querySelector(arguments[0]); return e ? e.textContent.trim() : '';"
    return str(driver.execute_script(script, selector))


def _sign_in(driver: Any, base: str, key: str, tenant: str) -> None:
    driver.get(base + "/login")
    _css(driver, "input[name=api_key]")[0].send_keys(key)
    _css(driver, "input[name=tenant]")[0].send_keys(tenant)
    _css(driver, "#login button")[0].click()
    eventually_sync(lambda: driver.current_url.endswith("/executions"), within=10, what="signed in")


def _publish(base: str, key: str, tenant: str, type_: str, data: dict[str, Any]) -> str:
    envelope = {"specversion": "1.0", "id": uuid.uuid4().hex, "source": "/browser-test", "type": type_, "data": data}
    response = httpx.post(
        f"{base}/v1/tenants/{tenant}/events",
        content=json.dumps(envelope),
        headers={"content-type": "application/cloudevents+json", "authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert response.status_code == 202, response.text
    [result] = response.json()["results"]
    [execution] = result["executions"]
    return str(execution["id"])


def test_the_dashboard_in_a_browser(browser: Any, site: tuple[WebServerProcess, Keys], shots: Path) -> None:
    server, keys = site
    base = server.http
    driver = browser

    # sign-in page, then a writer signs in
    driver.get(base + "/executions")
    eventually_sync(lambda: "/login" in driver.current_url, within=10, what="redirected to sign in")
    driver.save_screenshot(str(shots / "login.png"))
    _sign_in(driver, base, keys.writer, keys.tenant)
    assert _text(driver, "#role") == "writer"

    # apply two actions from the actions page
    driver.get(base + "/actions")
    _css(driver, "#apply textarea")[0].send_keys(ACTIONS_YAML)
    _css(driver, "#apply button")[0].click()
    eventually_sync(lambda: "applied" in _text(driver, ".notice"), within=10, what="applied notice")
    names = [row.get_attribute("data-name") for row in _css(driver, "#actions-table tbody tr")]
    assert sorted(names) == ["onboard", "order-alert", "refuse-order"]
    driver.save_screenshot(str(shots / "actions.png"))

    # the live list: an event published through HTTP ingest appears without a reload
    driver.get(base + "/executions")
    eventually_sync(lambda: _css(driver, "#live-state")[0].is_displayed(), within=10, what="live stream open")
    driver.execute_script("window.__sameDocument = 'yes';")
    execution_id = _publish(
        base, keys.publisher, keys.tenant, "orders.created", {"order_id": 7, "amount": 99, "note": XSS}
    )

    eventually_sync(
        lambda: _text(driver, f"#executions-table tr[data-id='{execution_id}'] .status"),
        until=lambda s: s == "succeeded",
        within=20,
        what="the execution live in the list",
    )
    assert driver.execute_script("return window.__sameDocument;") == "yes", "the page was reloaded"
    driver.save_screenshot(str(shots / "executions.png"))

    # open it: the attacker's markup is text
    _css(driver, f"#executions-table tr[data-id='{execution_id}'] a")[0].click()
    eventually_sync(lambda: _css(driver, "#input"), within=10, what="the execution page")
    assert "<script>document.title='pwned'" in _text(driver, "#input")
    assert _css(driver, "#input script, #input img, #output script, #output img") == []
    assert driver.execute_script("return window.__xss === undefined && document.title !== 'pwned';")
    assert '"alerted": true' in _text(driver, "#output")
    assert _css(driver, "#retry")  # a writer may retry a finished execution
    driver.save_screenshot(str(shots / "execution.png"))

    # a dead letter, requeued from the dead-letters page
    dead_id = _publish(base, keys.publisher, keys.tenant, "orders.refused", {"order_id": 8})
    driver.get(base + "/dead-letters")

    def dead_listed() -> bool:
        driver.refresh()
        return bool(_css(driver, f"#dead-letters-table tr[data-id='{dead_id}']"))

    eventually_sync(dead_listed, within=20, interval=0.5, what="the dead letter listed")
    driver.save_screenshot(str(shots / "dead-letters.png"))
    _css(driver, f"#dead-letters-table tr[data-id='{dead_id}'] button")[0].click()
    eventually_sync(lambda: _text(driver, ".notice"), until=lambda t: dead_id in t, within=10, what="requeued notice")

    # a workflow run shows its step tree
    run_id = _publish(base, keys.publisher, keys.tenant, "customers.created", {"email": "ada@example.com"})

    def steps_done() -> list[str]:
        driver.get(f"{base}/executions/{run_id}")
        return [li.text.split()[1] if len(li.text.split()) > 1 else "" for li in _css(driver, "#steps li")]

    eventually_sync(steps_done, until=lambda s: s == ["succeeded", "succeeded"], within=20, interval=0.5, what="steps")
    assert [li.text.split()[0] for li in _css(driver, "#steps li")] == ["greet", "notify"]
    driver.save_screenshot(str(shots / "workflow.png"))

    # test an event against an action: the explanation
    driver.get(base + "/actions/order-alert")
    _css(driver, "#test-event button")[0].click()
    eventually_sync(lambda: _css(driver, "#explanation"), within=10, what="the explanation")
    assert _text(driver, "#explanation h3") == "Matches"
    driver.execute_script("document.getElementById('test-event').scrollIntoView();")
    driver.save_screenshot(str(shots / "action.png"))

    driver.get(base + "/stats")
    eventually_sync(lambda: _css(driver, "svg.chart"), within=10, what="the stats page")
    driver.save_screenshot(str(shots / "stats.png"))

    # readable on a phone
    driver.set_window_size(390, 844)
    driver.get(base + "/executions")
    eventually_sync(lambda: _css(driver, "#executions-table"), within=10, what="executions on a phone")
    width = driver.execute_script("return document.documentElement.scrollWidth;")
    assert width <= 400, f"the page is {width}px wide on a 390px screen"
    driver.save_screenshot(str(shots / "executions-phone.png"))
    driver.set_window_size(1280, 900)

    # a reader sees no control that changes anything
    _css(driver, "form[action='/logout'] button")[0].click()
    eventually_sync(lambda: "/login" in driver.current_url, within=10, what="signed out")
    _sign_in(driver, base, keys.reader, keys.tenant)
    assert _text(driver, "#role") == "reader"
    for page in ("/actions", "/actions/order-alert", f"/executions/{execution_id}", "/dead-letters"):
        driver.get(base + page)
        # (explaining an event against an action only reads: a reader may)
        buttons = [b.text for b in _css(driver, "main form[method=post]:not(#test-event) button")]
        assert buttons == [], f"{page} shows {buttons} to a reader"


def test_the_server_refuses_a_reader_and_a_forged_form(site: tuple[WebServerProcess, Keys]) -> None:
    """Hidden controls are not the defence: the server refuses what a role may not do, and a
    form without the session's CSRF token."""
    server, keys = site
    with httpx.Client(base_url=server.http, timeout=30) as reader:
        signed = reader.post("/login", data={"api_key": keys.reader, "tenant": keys.tenant})
        assert signed.status_code == 303
        page = reader.get("/dead-letters")
        match = re.search(r'name="csrf" value="([^"]+)"', page.text)  # the sign-out form's token
        assert match is not None
        refused = reader.post("/dead-letters/requeue", data={"csrf": match.group(1)})
        assert refused.status_code == 403 and "ROLE_NOT_ALLOWED" in refused.text, refused.text[-800:]
    with httpx.Client(base_url=server.http, timeout=30) as writer:
        writer.post("/login", data={"api_key": keys.writer, "tenant": keys.tenant})
        forged = writer.post("/dead-letters/requeue", data={"csrf": "forged"})
        assert forged.status_code == 403 and "CSRF" in forged.text
        cross_site = writer.post("/dead-letters/requeue", data={}, headers={"origin": "https://evil.example"})
        assert cross_site.status_code == 403
        assert "default-src 'none'" in writer.get("/executions").headers["content-security-policy"]


def test_an_admin_creates_and_revokes_a_key(site: tuple[WebServerProcess, Keys]) -> None:
    """The keys page shows a new token once; a revoked key is signed out at once."""
    server, keys = site
    with httpx.Client(base_url=server.http, timeout=30) as admin:
        admin.post("/login", data={"api_key": os.environ["NEOACTIONS_API_KEY"], "tenant": keys.tenant})
        page = admin.get("/keys")
        assert page.status_code == 200 and "dashboard reader" in page.text
        assert keys.reader not in page.text  # tokens are never listed
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        created = admin.post("/keys", data={"csrf": csrf.group(1), "name": "ops <b>team</b>", "role": "reader"})
        token = re.search(r'<pre class="token" id="token">([^<]+)</pre>', created.text)
        assert token is not None and "ops &lt;b&gt;team&lt;/b&gt;" in created.text
        key_id = re.search(r'<tr data-id="([^"]+)"><td class="mono">[^<]*</td><td>ops &lt;b&gt;team', created.text)
        assert key_id is not None
        assert token.group(1) not in admin.get("/keys").text
        with httpx.Client(base_url=server.http, timeout=30) as holder:
            assert holder.post("/login", data={"api_key": token.group(1), "tenant": keys.tenant}).status_code == 303
            assert holder.get("/executions").status_code == 200
            revoked = admin.post(f"/keys/{key_id.group(1)}/revoke", data={"csrf": csrf.group(1)})
            assert revoked.status_code == 303
            assert eventually_sync(lambda: holder.get("/executions").status_code == 303, within=5, what="signed out")
        plugins = admin.get("/plugins", params={"q": "anything"})
        assert plugins.status_code == 200 and "python" in plugins.text
