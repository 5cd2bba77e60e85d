"""The JSON API's /docs page in a real headless browser (Debian's chromium, driven by selenium
through Debian's chromedriver): it renders offline, lists every route, and its "Try it out"
classifies a text with the SDK's scores."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as shown
from selenium.webdriver.support.ui import WebDriverWait

from emoclient import Client
from emoserve import LocalServer

from .conftest import API_MODELS

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="needs Debian's chromium and chromium-driver (make browser installs them)",
)
ROUTES = {
    ("post", "/classify"),
    ("post", "/models/{model}"),
    ("post", "/predict"),
    ("get", "/models"),
    ("get", "/models/{model}"),
    ("get", "/health"),
}
TEXT = "Thank you so much, this made my day"


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    # The driver's path given: selenium's manager would otherwise look for one on the network.
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(browser: webdriver.Chrome, css: str) -> WebElement:
    element: WebElement = WebDriverWait(browser, 30).until(
        shown.visibility_of_element_located((By.CSS_SELECTOR, css))
    )
    return element


def test_the_docs_page_lists_every_route_and_its_try_it_out_classifies(
    browser: webdriver.Chrome, json_api: str, server: LocalServer
) -> None:
    browser.get(f"{json_api}/docs")
    wait_for(browser, ".opblock")
    listed = {
        (block.get_attribute("class").split("opblock-")[-1].split()[0],
         block.find_element(By.CSS_SELECTOR, ".opblock-summary-path").get_attribute("data-path"))
        for block in browser.find_elements(By.CSS_SELECTOR, ".opblock")
    }  # fmt: skip
    assert listed == ROUTES
    cdn = [src for src in browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    ) if not src.startswith(json_api)]  # fmt: skip
    assert not cdn  # every asset from the front end itself: the page works offline

    wait_for(browser, "#operations-default-classify_classify_post .opblock-summary").click()
    wait_for(browser, ".try-out__btn").click()
    body = wait_for(browser, "textarea.body-param__text")
    body.send_keys(Keys.CONTROL, "a")
    body.send_keys(Keys.DELETE)
    model = API_MODELS[0]
    body.send_keys(json.dumps({"texts": [TEXT], "model": model}))
    wait_for(browser, "button.execute").click()
    status = wait_for(browser, ".live-responses-table .response .response-col_status")
    answer = wait_for(browser, ".live-responses-table .response-col_description pre")
    assert status.text.strip() == "200"
    (result,) = json.loads(answer.text)["results"]
    with Client(server.endpoints.grpc_url) as client:
        (expected,) = client.classify([TEXT], model=model)
    assert result["scores"] == dict(expected.scores)  # the SDK's, bit for bit
