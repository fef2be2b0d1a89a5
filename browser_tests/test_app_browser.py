"""The web app (sa-app) as a person meets it, in a real (headless) browser.

Uploads a target and a reference, clicks Colorize, checks the full-resolution result, the before/after slider
and the download, then opens "Why this colour", clicks a point of the target and checks that the attention view
(the lit reference and the text with its swatches) changed. Screenshots go to build/browser/app_*.png. Run
with `.venv/bin/python -m pytest -q browser_tests`.
"""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path

import pytest
from browsing import css, wait_for
from PIL import Image
from selenium.webdriver.common.action_chains import ActionChains

pytestmark = pytest.mark.timeout(900)  # a server start, a notebook run and a browser session

REPO = Path(__file__).resolve().parent.parent
SHOTS = REPO / "build" / "browser"
DOWNLOADS = SHOTS / "downloads"  # the driver fixture's download folder
PHOTOS = REPO / "data" / "demo" / "images"
OPEN_S, RUN_S, REACT_S = 90, 180, 60  # bounded waits: the page, one colorization, one click




def image_src(driver, element_id: str) -> str:
    images = css(driver, f"#{element_id} img")
    return images[0].get_attribute("src") if images else ""


def upload(driver, element_id: str, path: Path) -> None:
    """Give a file to an image input as its file dialog would."""
    inputs = css(driver, f"#{element_id} input[type=file]")
    assert inputs, f"no file input in #{element_id}"
    driver.execute_script("arguments[0].style.display = 'block';", inputs[0])
    inputs[0].send_keys(str(path))
    wait_for(driver, f"the upload to show in #{element_id}", lambda d: image_src(d, element_id), REACT_S)


def tab(driver, name: str) -> None:
    button = wait_for(driver, f"the tab {name!r}", lambda d: next(
        (b for b in css(d, "button[role=tab]") if b.text.strip() == name), False), REACT_S)
    button.click()


def why_state(driver) -> dict:
    reference = css(driver, "#sa-why-reference img")[0]
    return {"reference_src": reference.get_attribute("src"), "info": css(driver, "#sa-why-info")[0].text,
            "reference_pixels": hashlib.sha1(reference.screenshot_as_png).hexdigest()}


def screenshot(driver, name: str) -> None:
    driver.execute_script("window.scrollTo(0, 0);")
    time.sleep(0.5)
    driver.save_screenshot(str(SHOTS / name))


@pytest.fixture
def pair(tmp_path) -> tuple[Path, Path, tuple[int, int]]:
    """A gray target (not square, not the working size) and a colour reference."""
    target = Image.open(PHOTOS / "gcompris-cheetah.jpg").convert("L").resize((480, 270))
    target.save(tmp_path / "cheetah-gray.png")
    Image.open(PHOTOS / "gcompris-panda.jpg").convert("RGB").save(tmp_path / "reference.jpg")
    return tmp_path / "cheetah-gray.png", tmp_path / "reference.jpg", target.size


def test_colorize_and_ask_why_in_the_web_app(app_server, driver, pair):
    target, reference, size = pair
    driver.set_window_size(1400, 1500)  # tall enough for the inputs and the why-view in one screenshot
    driver.get(app_server.url)
    wait_for(driver, "the app's page", lambda d: css(d, "#sa-run") and css(d, "#sa-target-input input[type=file]"),
             OPEN_S)
    upload(driver, "sa-target-input", target)
    upload(driver, "sa-reference-input", reference)
    css(driver, "#sa-run")[0].click()
    status = wait_for(driver, "the colorization to finish", lambda d: (
        t := css(d, "#sa-status")[0].text) and "px with" in t and t, RUN_S)
    assert f"{size[0]}x{size[1]} px with demo-transfer" in status  # the default checkpoint

    # The result at full resolution, the before/after slider and the download.
    result = wait_for(driver, "the result image", lambda d: css(d, "#sa-result img"), REACT_S)[0]
    natural = driver.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight];", result)
    assert tuple(natural) == size, f"the result is {natural}, the target {size}"
    assert len(css(driver, "#sa-slider img")) == 2, "the before/after slider shows two images"
    screenshot(driver, "app_01_result.png")
    download = css(driver, "#sa-download")[0]
    assert download.is_enabled()
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", download)
    download.click()
    saved = wait_for(driver, "the PNG to be downloaded", lambda d: [
        p for p in DOWNLOADS.glob("*colorized*.png")], REACT_S)[0]
    with Image.open(saved) as png:
        assert png.format == "PNG" and png.size == size

    # Why this colour: click near the top-left of the target; the lit reference and the text change.
    tab(driver, "Why this colour")
    wait_for(driver, "the why-view", lambda d: image_src(d, "sa-why-target") and image_src(d, "sa-why-reference")
             and "superpixel" in css(d, "#sa-why-info")[0].text, REACT_S)
    before = why_state(driver)
    assert "x, y = " in before["info"] and len(css(driver, "#sa-why-info .sa-swatch")) == 2
    picture = css(driver, "#sa-why-target img")[0]
    width, height = picture.size["width"], picture.size["height"]
    ActionChains(driver).move_to_element_with_offset(picture, -width // 2 + 8, -height // 2 + 8).click().perform()
    after = wait_for(driver, "the attention view to change after the click", lambda d: (
        s := why_state(d))["reference_src"] != before["reference_src"] and s["info"] != before["info"] and s, REACT_S)
    x, y = (int(v) for v in re.search(r"x, y = (\d+), (\d+)", after["info"]).groups())
    assert x < 25 and y < 25, f"the click landed at {x}, {y}, expected near the top-left corner"
    wait_for(driver, "the lit reference's pixels to change",
             lambda d: why_state(d)["reference_pixels"] != before["reference_pixels"], REACT_S)
    screenshot(driver, "app_02_why.png")

    # Another level keeps the point and redraws.
    level_2 = next(label for label in css(driver, "#sa-level label") if label.text.strip().startswith("2"))
    level_2.click()
    coarse = wait_for(driver, "the level-2 view", lambda d: (s := why_state(d))["info"].startswith("level 2")
                      and s, REACT_S)
    assert f"x, y = {x}, {y}" in coarse["info"]
    screenshot(driver, "app_03_level_2.png")

    # Level 1, then a click on the cheetah's flank: the README's screenshot (docs/figures/app.png).
    next(label for label in css(driver, "#sa-level label") if label.text.strip().startswith("1")).click()
    wait_for(driver, "the level-1 view", lambda d: why_state(d)["info"].startswith("level 1"), REACT_S)
    shown = why_state(driver)
    picture = css(driver, "#sa-why-target img")[0]
    width, height = picture.size["width"], picture.size["height"]
    ActionChains(driver).move_to_element_with_offset(picture, int(0.05 * width), int(0.12 * height)).click().perform()
    flank = wait_for(driver, "the view of the cheetah's flank", lambda d: (s := why_state(d))["info"] != shown["info"]
                     and f"x, y = {x}, {y}" not in s["info"] and s, REACT_S)  # the click's point, not the kept one
    x, y = (int(v) for v in re.search(r"x, y = (\d+), (\d+)", flank["info"]).groups())
    assert abs(x / 256 - 0.55) < 0.05 and abs(y / 144 - 0.62) < 0.06, (x, y)  # the network ran at 256 x 144
    screenshot(driver, "app_04_why_cheetah.png")
