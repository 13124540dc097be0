"""The page in a real headless browser (Chromium, driven by Selenium): it finds a key by its
prefix, shows its value, deletes it after the confirmation, and asks for the token when the
server has one. Skipped where Selenium or Chromium and its driver are not installed."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _server import TOKEN, Server

webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium")
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.wait import WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = [
    pytest.mark.slow,  # a browser started for each test
    pytest.mark.skipif(
        CHROMIUM is None or CHROMEDRIVER is None,
        reason="needs Chromium and chromedriver (Debian: apt-get install chromium chromium-driver)",
    ),
]
WAIT = 15.0  # seconds for the page to show what a step expects


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1200,760"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=webdriver.ChromeService(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(WAIT)
    yield driver
    driver.quit()


def key_buttons(browser: Any) -> list[str]:
    """The keys listed, read in one step (the list is redrawn as pages arrive)."""
    script = "return [...document.querySelectorAll('#keys button.key')].map(b => b.textContent)"
    keys: list[str] = browser.execute_script(script)
    return keys


def wait_for(browser: Any, condition: Any) -> Any:
    return WebDriverWait(browser, WAIT, ignored_exceptions=[StaleElementReferenceException]).until(
        condition
    )


def click_key(browser: Any, key: str) -> None:
    def click(b: Any) -> bool:
        for button in b.find_elements(By.CSS_SELECTOR, "#keys button.key"):
            if button.text == key:
                button.click()
                return True
        return False

    wait_for(browser, click)


def search(browser: Any, prefix: str) -> None:
    field = browser.find_element(By.ID, "prefix")
    field.clear()
    field.send_keys(prefix)
    browser.find_element(By.ID, "search").click()


def test_find_open_and_delete_a_key(server: Server, browser: Any, tmp_path: Path) -> None:
    with server.client() as client:
        for name in ("alpha", "beta", "gamma"):
            client.put(f"/v1/keys/web:{name}", json={"name": name, "n": len(name)})
        client.put("/v1/keys/elsewhere", json={})
    browser.get(server.url + "/")
    wait_for(browser, lambda b: "web:alpha" in key_buttons(b))
    assert not browser.find_element(By.ID, "token-form").is_displayed()
    assert not browser.find_element(By.ID, "entry").is_displayed()

    search(browser, "web:")
    wait_for(browser, lambda b: key_buttons(b) == ["web:alpha", "web:beta", "web:gamma"])
    click_key(browser, "web:beta")
    wait_for(browser, lambda b: '"name": "beta"' in b.find_element(By.ID, "value").text)
    assert browser.find_element(By.ID, "entry-key").text == "web:beta"
    browser.save_screenshot(str(tmp_path / "page.png"))

    browser.find_element(By.ID, "delete").click()
    alert = wait_for(browser, expected_conditions.alert_is_present())
    assert "web:beta" in alert.text
    alert.accept()
    wait_for(browser, lambda b: key_buttons(b) == ["web:alpha", "web:gamma"])
    with server.client() as client:
        assert client.get("/v1/keys/web:beta").status_code == 404


def test_dismissing_the_confirmation_keeps_the_key(server: Server, browser: Any) -> None:
    with server.client() as client:
        client.put("/v1/keys/keep:1", json={"keep": True})
    browser.get(server.url + "/")
    search(browser, "keep:")
    wait_for(browser, lambda b: key_buttons(b) == ["keep:1"])
    click_key(browser, "keep:1")
    wait_for(browser, lambda b: "keep" in b.find_element(By.ID, "value").text)
    browser.find_element(By.ID, "delete").click()
    wait_for(browser, expected_conditions.alert_is_present()).dismiss()
    with server.client() as client:
        assert client.get("/v1/keys/keep:1").status_code == 200


def test_paging_through_the_keys(server: Server, browser: Any) -> None:
    with server.client() as client:
        items = {f"pg:{i:03}": {} for i in range(120)}
        assert client.post("/v1/batch/create", json={"items": items}).status_code == 201
    browser.get(server.url + "/")
    search(browser, "pg:")
    wait_for(browser, lambda b: key_buttons(b)[:1] == ["pg:000"])
    seen = key_buttons(browser)
    for _ in range(2):
        browser.find_element(By.ID, "next").click()
        wait_for(browser, lambda b, last=seen[-1]: key_buttons(b) and key_buttons(b)[0] > last)
        seen += key_buttons(browser)
    assert seen == sorted(items)
    assert not browser.find_element(By.ID, "next").is_enabled()


def test_the_page_asks_for_the_token(guarded: Server, browser: Any) -> None:
    with guarded.client(TOKEN) as client:
        client.put("/v1/keys/secret:1", json={})
    browser.get(guarded.url + "/")
    form = wait_for(browser, lambda b: b.find_element(By.ID, "token-form"))
    wait_for(browser, lambda b: form.is_displayed())
    browser.find_element(By.ID, "token").send_keys(TOKEN)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for(browser, lambda b: "secret:1" in key_buttons(b))
    assert browser.execute_script("return sessionStorage.getItem('aiokv-token')") == TOKEN
    browser.execute_script("sessionStorage.clear()")


def test_the_page_loads_nothing_from_elsewhere(server: Server) -> None:
    page = httpx.get(server.url + "/", timeout=10).text
    assert "http://" not in page
    assert "https://" not in page
