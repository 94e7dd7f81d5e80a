"""The dashboard in a real browser against a real server: headless Chromium (Debian's
``chromium`` and ``chromium-driver``, installed by ``make test``) driven by Selenium, and
the production server (``serving.production``) with two workers on loopback.

It signs in, finds a customer with the keyboard, reads their history and reasons, posts
a purchase through the API and sees the page change after a reload, opens an item,
promotes a model with the API token, and checks that the browser's console stays clean.
Every page is saved as a screenshot at 360 px and at desktop width under
``out/screenshots/`` for a person to look at.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path

import pytest

from recommender.algorithms import create_algorithm
from recommender.artifacts import CURRENT, current_version, save_model
from recommender.catalog import load_catalog
from recommender.evaluation.holdout import evaluate_holdout
from recommender.evaluation.splits import random_split
from recommender.interactions import Interactions
from recommender.model import Model
from recommender.purchases import load_purchases
from recommender.topn import compute_top_lists
from tests.conftest import bought_by, free_port, write_two_group_store
from tests.server_process import request, start_server, stop

pytestmark = pytest.mark.slow
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
SCREENSHOTS = Path(__file__).resolve().parents[1] / "out" / "screenshots"
API_TOKEN, READ_TOKEN = "api-token-for-the-browser-test", "read-token-for-the-browser-test"
WIDTHS = {"phone": 360, "desktop": 1280}


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install '.[dev]')")
    from selenium.webdriver.chrome.service import Service

    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("headless Chromium is not installed: `make chromium` installs Debian's chromium and chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}", "--window-size=1280,900",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # The driver's path is given, so Selenium Manager never looks for (or downloads) one.
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def train_evaluated_model(data_folder: Path, models_dir: Path) -> Path:
    """A graph-filter model of the two-group store, evaluated on a held-out split (metrics and
    report in its folder) and with top lists, as `recommender train --evaluate` publishes one."""
    purchases, catalog_path = write_two_group_store(data_folder)
    log = load_purchases(purchases)
    evaluation = evaluate_holdout(*random_split(log, 0.34, seed=3), algorithm="graph-filter", params=None, ks=[2, 5], settings={})
    interactions = Interactions.from_log(log)
    algorithm = create_algorithm("graph-filter").fit(interactions.matrix)
    model = Model(algorithm, interactions.customers, interactions.items, interactions.matrix, load_catalog(catalog_path, interactions.items))
    model.top_lists = compute_top_lists(algorithm, model.history, 5)
    info = {"data": {"fingerprint": interactions.fingerprint()}, "metrics": evaluation.metrics}
    return save_model(model, models_dir, info=info, extra_files=evaluation.files())


@pytest.fixture
def server(tmp_path, models_dir):
    """The production server serving the known-answer model, with a second, evaluated version ready to promote."""
    second = train_evaluated_model(tmp_path / "data-2", models_dir)
    port = free_port()
    settings = {
        "RECOMMENDER_MODEL_PATH": str(models_dir / CURRENT),
        "RECOMMENDER_EVENTS_DB": str(tmp_path / "events.sqlite3"),
        "RECOMMENDER_API_TOKEN": API_TOKEN,
        "RECOMMENDER_READ_TOKEN": READ_TOKEN,
        "RECOMMENDER_MODEL_CHECK_SECONDS": "0",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
    }
    process = start_server(port, tmp_path / "server.log", settings)
    try:
        yield {"port": port, "base": f"http://127.0.0.1:{port}", "models_dir": models_dir, "second": second.name}
    finally:
        stop(process)


def console_errors(driver) -> list[str]:
    """Console messages at error level since the last call (reading the log empties it)."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def screenshot(driver, name: str) -> None:
    """The whole page at each width, as a phone (device metrics) and a desktop would show it."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for label, width in WIDTHS.items():
        metrics = {"width": width, "height": 800, "deviceScaleFactor": 1, "mobile": label == "phone"}
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
        height = min(int(driver.execute_script("return document.documentElement.scrollHeight")), 6000)
        overflow = driver.execute_script("return document.documentElement.scrollWidth - document.documentElement.clientWidth")
        shot = driver.execute_cdp_cmd(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}}
        )
        (SCREENSHOTS / f"{name}-{label}.png").write_bytes(base64.b64decode(shot["data"]))
        assert overflow <= 0, f"{name} scrolls sideways by {overflow} px at {width} px wide (see its screenshot)"
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def navigating(driver, action) -> None:
    """Do ``action`` (a click or Enter that leaves the page) and wait until the next page has
    loaded: WebDriver waits by itself only for get, back and refresh."""
    from selenium.webdriver.support.ui import WebDriverWait

    old_page = driver.find_element("tag name", "html")
    action()
    wait = WebDriverWait(driver, 30)
    wait.until(lambda d: _stale(old_page))
    wait.until(lambda d: d.execute_script("return document.readyState") == "complete")


def _stale(element) -> bool:
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

    try:
        element.tag_name  # noqa: B018 - touching it tells whether the page it belonged to is gone
        return False
    except StaleElementReferenceException:
        return True
    except WebDriverException as error:
        # Touched mid-navigation, Chromium may answer that the node no longer belongs to the
        # document instead of "stale" (CI, 2026-12-03): the old page is gone all the same.
        if "does not belong to the document" in str(error):
            return True
        raise


def text(driver) -> str:
    return driver.find_element("tag name", "main").text


def test_dashboard_in_a_real_browser(browser, server):
    from selenium.webdriver.common.keys import Keys

    base = server["base"]
    for customer in ("c0", "d1", "stranger"):  # some traffic for the overview
        assert request(server["port"], "GET", f"/v1/customers/{customer}/recommendations", token=READ_TOKEN)[0] == 200

    # Signing in: the page asks for the token; a wrong one is refused with a 401 page.
    browser.get(f"{base}/dashboard/")
    assert "Sign in" in browser.title
    screenshot(browser, "login")
    navigating(browser, lambda: browser.find_element("id", "token").send_keys("not-the-token", Keys.ENTER))
    assert "That token is not right" in text(browser)
    navigating(browser, lambda: browser.find_element("id", "token").send_keys(READ_TOKEN, Keys.ENTER))
    assert browser.title.startswith("Overview")
    console_errors(browser)  # the two 401 answers above are logged as console errors, rightly
    assert "item-knn" in text(browser) and "GET /v1/customers/<customer_id>/recommendations" in text(browser)
    assert "No experiments configured" in text(browser)
    assert READ_TOKEN not in browser.page_source and READ_TOKEN not in json.dumps(browser.get_cookies())
    screenshot(browser, "overview")

    # Find a customer with the keyboard only: Tab to the search field, type, Enter.
    body = browser.find_element("tag name", "body")
    body.send_keys(Keys.TAB)
    for _ in range(12):
        if browser.switch_to.active_element.get_attribute("id") == "find-customer":
            break
        browser.switch_to.active_element.send_keys(Keys.TAB)
    assert browser.switch_to.active_element.get_attribute("id") == "find-customer", "the customer search is not reachable by Tab"
    navigating(browser, lambda: browser.switch_to.active_element.send_keys("c0", Keys.ENTER))
    assert browser.current_url.endswith("/dashboard/customers/c0")
    page = text(browser)
    assert all(f"Trowel {item}" in page for item in bought_by("c0")), page
    assert "because you bought Trowel" in page and "No stored events since the model was trained" in page
    screenshot(browser, "customer")

    # A purchase through the API shows on the page after a reload, with what it changed.
    event = {"customer_id": "c0", "item_id": "a3"}
    assert request(server["port"], "POST", "/v1/events", event, token=API_TOKEN)[0] == 202
    browser.refresh()
    page = text(browser)
    assert "1 event received since the model was trained" in page and "no longer listed: Trowel a3" in page
    recommended = [li.find_element("tag name", "a").text for li in browser.find_elements("css selector", "ol.recommendations > li")]
    assert "Trowel a3" not in recommended and recommended[0] == "Trowel a4"
    screenshot(browser, "customer-after-purchase")

    navigating(browser, lambda: browser.find_element("link text", "Trowel a4").click())
    assert browser.current_url.endswith("/dashboard/items/a4")
    assert "Customers who bought this also bought" in text(browser) and "Garden" in text(browser)
    screenshot(browser, "item")

    # Promote the second version: confirmation page, API token, then the notice.
    navigating(browser, lambda: browser.find_element("link text", "Models").click())
    screenshot(browser, "models")
    second = server["second"]
    navigating(browser, lambda: browser.find_element("css selector", f"a[href$='/models/{second}/report']").click())
    assert "Accuracy against k" in browser.page_source
    screenshot(browser, "evaluation-report")
    browser.back()
    navigating(browser, lambda: browser.find_element("css selector", f"a[href$='promote?version={second}']").click())
    assert f"Promote {second}?" in text(browser)
    screenshot(browser, "promote-confirm")
    navigating(browser, lambda: browser.find_element("id", "token").send_keys(API_TOKEN, Keys.ENTER))
    assert f"Promoted {second}" in text(browser)
    assert current_version(server["models_dir"]) == second
    screenshot(browser, "models-after-promotion")
    for _ in range(4):  # every worker, whichever answers
        status, reply = request(server["port"], "GET", "/v1/model", token=READ_TOKEN)
        assert status == 200 and json.loads(reply)["version"] == second

    navigating(browser, lambda: browser.find_element("link text", "Experiments").click())
    assert "No experiments configured" in text(browser)
    screenshot(browser, "experiments")
    assert console_errors(browser) == []

    browser.get(f"{base}/dashboard/items/a4")  # the promoted model has top lists
    assert re.search(r"\d+ of 12 customers' top 5", text(browser))
    screenshot(browser, "item-with-top-lists")

    browser.get(f"{base}/dashboard/customers")
    assert "Customers with the longest histories" in text(browser)
    screenshot(browser, "customers")
    assert console_errors(browser) == []

    browser.get(f"{base}/dashboard/customers/nobody-at-all")
    assert "Unknown customer" in text(browser)
    screenshot(browser, "unknown-customer")


@pytest.fixture(autouse=True, scope="module")
def _clean_screenshots():
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    yield
