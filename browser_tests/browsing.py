"""Selenium helpers shared by the browser tests: bounded waits that fail with what was awaited, CSS lookups."""

from __future__ import annotations

import pytest
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait


def wait_for(driver, what: str, condition, timeout: float):
    """WebDriverWait that fails the test with `what` (and a screenshot is taken by the fixture)."""
    def safe(d):
        try:
            return condition(d)
        except (StaleElementReferenceException, WebDriverException):
            return False
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.5).until(safe)
    except TimeoutException:
        pass
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}", pytrace=False)


def css(driver, selector: str):
    return driver.find_elements(By.CSS_SELECTOR, selector)
