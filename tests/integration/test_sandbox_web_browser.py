"""The sandbox's web page in a real headless browser (Debian's `chromium` and `chromium-driver`,
driven by Selenium; `scripts/setup.sh` installs them): sign in with the site token, watch a job's
log line appear while the job is still processing, press cancel and see the job become canceled.
Fails, never skips, when the browser is missing."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import test_sandbox_batch
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from test_sandbox_batch import EXECUTOR, _dequeue
from test_sandbox_web import JOB, UI, _add_entry, stop_as_canceled

samples = test_sandbox_batch.samples  # the fixture: sample repositories and an executor
pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT = 60.0


@pytest.fixture
def browser(tmp_path: Any) -> Iterator[webdriver.Chrome]:
    for path in (CHROMIUM, CHROMEDRIVER):
        assert os.access(path, os.X_OK), f"{path} missing: run scripts/setup.sh"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def _text(driver: webdriver.Chrome, element_id: str) -> str:
    return str(driver.find_element(By.ID, element_id).text)


def test_browser_watches_a_job_log_and_cancels_it(samples: Any, browser: webdriver.Chrome) -> None:
    wait = WebDriverWait(browser, WAIT, poll_frequency=0.2)
    browser.get(f"{samples.url}{UI}/")
    assert "needs the site token" in _text(browser, "problem")
    browser.find_element(By.NAME, "token").send_keys(samples.token)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(lambda d: d.find_elements(By.ID, "executors"))
    assert EXECUTOR in _text(browser, "executors")

    samples.enqueue(JOB)
    job = _dequeue(samples)
    headers = samples.job_headers(job, EXECUTOR)
    browser.get(f"{samples.url}{UI}/jobs/{job['id']}")
    assert _text(browser, "state") == "processing"
    _add_entry(samples, job, headers, "stdout: hello from the running step\n")
    wait.until(lambda d: "hello from the running step" in _text(d, "entries"))
    assert _text(browser, "state") == "processing"

    browser.find_element(By.ID, "cancel").click()
    wait.until(lambda d: samples.job(job["id"])["cancel"])
    stop_as_canceled(samples, job)
    wait.until(lambda d: _text(d, "state") == "canceled")
    assert not browser.find_elements(By.ID, "cancel-form")
