"""Fixtures of the browser tests: a JupyterLab server and the web app (sa-app) on 127.0.0.1, and a headless
Chromium driving them.

All are real: `jupyter lab` from this venv in a subprocess (a random token, a free port, the repository
as its root, its own settings folder), `sa-app` in a subprocess on a free port, and Debian's chromium +
chromium-driver through selenium. Nothing is
skipped: a machine without Chromium, chromedriver or a JupyterLab that starts fails with a message that
says so. The server is always shut down (REST shutdown, then the process group is killed).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHOTS = REPO / "build" / "browser"
DOWNLOADS = SHOTS / "downloads"  # where the browser saves what a test downloads
# Debian's paths by default; `make test-browser CHROMIUM=... CHROMEDRIVER=...` passes others through the environment.
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-dev-shm-usage", "--window-size=1500,1300")
SERVER_START_S = 120
# JupyterLab settings for a test session: no autosave (the committed notebook must keep no outputs), every
# cell attached to the DOM (so outputs can be checked), no news or update checks (no network).
LAB_SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                        "checkForUpdates": False},
    "@jupyterlab/extensionmanager-extension/plugin.jupyterlab-settings": {"enabled": False},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 5.0) -> int:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status


class LabServer:
    """A running `jupyter lab`: base URL, token, and the way to stop it."""

    def __init__(self, workdir: Path):
        self.port, self.token = free_port(), secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        settings = workdir / "lab-settings"
        for name, values in LAB_SETTINGS.items():
            (settings / name).parent.mkdir(parents=True, exist_ok=True)
            (settings / name).write_text(json.dumps(values))
        env = dict(os.environ, JUPYTERLAB_SETTINGS_DIR=str(settings),
                   JUPYTERLAB_WORKSPACES_DIR=str(workdir / "workspaces"),
                   JUPYTER_RUNTIME_DIR=str(workdir / "runtime"), MPLBACKEND="Agg")
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.log_path = SHOTS / "jupyterlab.log"
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip", "127.0.0.1", "--port", str(self.port),
             f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={REPO}",
             "--ServerApp.port_retries=0", *(["--allow-root"] if os.geteuid() == 0 else [])],
            cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float = SERVER_START_S) -> None:
        wait_until_answering("jupyter lab", self.process, f"{self.url}/api/status?token={self.token}", self.url,
                             self.log_path, timeout)

    def stop(self) -> None:
        """Ask the server to shut down (it stops its kernels), then kill what is left of its process group."""
        if self.process.poll() is None:
            try:
                request = urllib.request.Request(f"{self.url}/api/shutdown?token={self.token}", method="POST")
                urllib.request.urlopen(request, timeout=10).close()
                self.process.wait(timeout=20)
            except (urllib.error.URLError, ConnectionError, TimeoutError, subprocess.TimeoutExpired):
                pass
        kill_group(self.process, grace=10)
        self._log.close()


class AppServer:
    """A running `sa-app` (python -m sa_lib.cli.app) on a free port, analytics off, logging to build/browser/."""

    def __init__(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.log_path = SHOTS / "sa-app.log"
        self._log = open(self.log_path, "w")
        env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", HF_HUB_DISABLE_TELEMETRY="1", MPLBACKEND="Agg")
        self.process = subprocess.Popen([sys.executable, "-m", "sa_lib.cli.app", "--port", str(self.port),
                                         "--device", "cpu"], cwd=REPO, env=env, stdout=self._log,
                                        stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float = SERVER_START_S) -> None:
        wait_until_answering("sa-app", self.process, f"{self.url}/", self.url, self.log_path, timeout)

    def stop(self) -> None:
        kill_group(self.process, grace=20)
        self._log.close()


def wait_until_answering(name: str, process: subprocess.Popen, probe: str, url: str, log_path: Path,
                         timeout: float) -> None:
    """Poll `probe` until it answers 200; fail naming the server and its log if it exits or stays silent."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{name} exited with code {process.returncode}; see {log_path}")
        try:
            if _get(probe) == 200:
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    pytest.fail(f"{name} did not answer on {url} within {timeout:.0f} s; see {log_path}")


def kill_group(process: subprocess.Popen, grace: float) -> None:
    """SIGTERM the server's process group, SIGKILL it if it has not exited after `grace` seconds."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def require_chromium() -> None:
    """Fail (never skip) when the browser or its driver is missing, naming what to install."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not (Path(path).is_file() and os.access(path, os.X_OK))]
    if missing:
        pytest.fail(f"browser test needs Debian's chromium and chromium-driver: {', '.join(missing)} not found "
                    f"(apt-get install -y chromium chromium-driver)", pytrace=False)


@pytest.fixture(scope="session", autouse=True)
def fresh_shots():
    """build/browser/ without the screenshots of an earlier session (they would mislead), once per session."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for stale in [*SHOTS.glob("*.png"), *DOWNLOADS.glob("*")]:
        stale.unlink()


@pytest.fixture(scope="session")
def lab(tmp_path_factory) -> LabServer:
    require_chromium()
    server = LabServer(tmp_path_factory.mktemp("jupyterlab"))
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def app_server() -> AppServer:
    require_chromium()
    server = AppServer()
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture
def driver(request):
    require_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"download.default_directory": str(DOWNLOADS),
                                              "download.prompt_for_download": False})
    try:
        browser = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    except Exception as err:  # selenium's errors vary with the version; any failure to start is fatal here
        pytest.fail(f"could not start headless Chromium through {CHROMEDRIVER}: {err}", pytrace=False)
    browser.set_page_load_timeout(120)
    browser.set_script_timeout(60)
    yield browser
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        SHOTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(SHOTS / f"{request.node.name}-failed.png"))
    browser.quit()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so the driver fixture can screenshot a failure."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)

