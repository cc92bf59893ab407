"""Screenshots of NNI's web UI with headless Chromium, driven through the DevTools protocol.

NNI 3.0's trial list shows five columns by default (Trial No., ID, duration, status, default metric); every
other key of the suite's FINAL metrics (``role``, ``arch_id``, ``variant``, ...) is a column the user adds
with "Add/Remove columns", which the web UI keeps in the browser's localStorage under
``<experiment id>_columns`` for 30 days (``ChangeColumnComponent.tsx``, ``model/localStorage.ts`` of NNI's
web UI). :func:`trial_list_screenshot` stores that choice the way the dialog does, reloads and screenshots,
so ``docs/webui-trials.png`` shows the list a README reader gets after ticking the same boxes.

Chromium's own ``--screenshot`` cannot run script before the capture, hence the DevTools protocol, over
``websockets`` (a dependency of nni).
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

# What the README asks a user to tick: who the trial is and which architecture, beside NNI's defaults.
SUITE_COLUMNS = ["sequenceId", "id", "duration", "status", "latestAccuracy", "metric/role", "metric/variant",
                 "metric/arch_id"]


class DevTools:
    """One page of a headless Chromium, commanded through its DevTools websocket."""

    def __init__(self, chromium: str, workdir: Path, size: tuple[int, int] = (1760, 1000)) -> None:
        from websockets.sync.client import connect

        self._process = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--remote-debugging-port=0",
             f"--user-data-dir={workdir}", f"--window-size={size[0]},{size[1]}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = workdir / "DevToolsActivePort"
        deadline = time.time() + 60
        while not (port_file.is_file() and port_file.read_text().strip()):
            if time.time() > deadline or self._process.poll() is not None:
                self.close()
                raise RuntimeError("headless Chromium did not open its DevTools port within 60 s")
            time.sleep(0.2)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
            page = next(t for t in json.load(response) if t["type"] == "page")
        self._socket = connect(page["webSocketDebuggerUrl"], max_size=2**26)
        self._next_id = 0

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and return its result (events that arrive meanwhile are skipped)."""
        self._next_id += 1
        self._socket.send(json.dumps({"id": self._next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._socket.recv(timeout=60))
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page."""
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def wait_for(self, expression: str, seconds: float = 60) -> None:
        """Poll until ``expression`` is truthy in the page."""
        deadline = time.time() + seconds
        while not self.evaluate(expression):
            if time.time() > deadline:
                raise TimeoutError(f"the page never satisfied {expression!r} within {seconds} s")
            time.sleep(0.25)

    def close(self) -> None:
        """End the browser."""
        if hasattr(self, "_socket"):
            self._socket.close()
        self._process.terminate()
        self._process.wait(timeout=30)


def trial_list_screenshot(url: str, experiment_id: str, path: Path, columns: list[str] = SUITE_COLUMNS) -> bytes:
    """A PNG of the web UI's trial list at ``url`` (``.../detail``) with ``columns`` shown, written to ``path``."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise FileNotFoundError("chromium not installed (apt-get install chromium; .ci/run does)")
    rows_shown = "document.querySelectorAll('.ms-DetailsRow').length > 0"
    with tempfile.TemporaryDirectory() as profile:
        browser = DevTools(chromium, Path(profile))
        try:
            browser.call("Page.navigate", url=url)
            browser.wait_for(rows_shown)
            stored = {"value": json.dumps(columns), "time": "__NOW__", "expire": 30 * 24 * 3600 * 1000,
                      "isSelectall": False}
            browser.evaluate(f"localStorage.setItem({json.dumps(experiment_id + '_columns')}, "
                             f"JSON.stringify({json.dumps(stored)}).replace('\"__NOW__\"', Date.now()))")
            browser.call("Page.reload")
            browser.wait_for(rows_shown)
            browser.wait_for("document.body.innerText.includes('arch_id (metric)')")
            time.sleep(1.0)  # the charts above the list animate in
            size = browser.call("Page.getLayoutMetrics")["cssContentSize"]  # the whole page, the list included
            clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
            png = base64.b64decode(browser.call("Page.captureScreenshot", format="png", clip=clip,
                                                captureBeyondViewport=True)["data"])
        finally:
            browser.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)
    return png
