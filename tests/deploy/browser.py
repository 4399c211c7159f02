"""Headless Chromium driven over the DevTools protocol: open a page, wait for it, screenshot it.

Debian's ``chromium`` is started with a fresh profile and without the background
networking that this machine's closed network refuses. The protocol is spoken over
``websockets`` (already a dependency of Prefect), so no browser-automation package and
no browser download are needed.
"""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import time
from pathlib import Path

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--window-size=1440,1000",
]


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


class Browser:
    """One headless Chromium with one page; a context manager that stops it."""

    def __init__(self, profile: Path, *, executable: str | None = None) -> None:
        executable = executable or chromium_path()
        if executable is None:
            raise FileNotFoundError("no chromium on PATH: apt-get install chromium")
        profile.mkdir(parents=True, exist_ok=True)
        self._process = subprocess.Popen(
            [executable, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            if time.monotonic() > deadline or self._process.poll() is not None:
                self.close()
                raise RuntimeError("chromium did not open its DevTools port within 30 s")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        self._socket = self._connect_page(port)
        self._ids = itertools.count(1)
        self.call("Page.enable")
        self.call("Runtime.enable")

    @staticmethod
    def _connect_page(port: int):
        import urllib.request

        from websockets.sync.client import connect

        deadline = time.monotonic() + 15
        while True:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as response:
                pages = [t for t in json.load(response) if t["type"] == "page"]
            if pages or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        return connect(pages[0]["webSocketDebuggerUrl"], max_size=64 * 2**20, open_timeout=10)

    def call(self, method: str, **params):
        """Send one protocol command and return its result (events in between are skipped)."""
        message_id = next(self._ids)
        self._socket.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            reply = json.loads(self._socket.recv(timeout=60))
            if reply.get("id") == message_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def open(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, *, timeout: float = 60.0, what: str = "") -> None:
        """Poll a JavaScript condition until it is true; fail naming ``what`` and the page's text."""
        deadline = time.monotonic() + timeout
        while not self.evaluate(expression):
            if time.monotonic() > deadline:
                text = (self.evaluate("document.body ? document.body.innerText : ''") or "")[:2000]
                raise TimeoutError(f"page did not show {what or expression} within {timeout:.0f} s; it shows:\n{text}")
            time.sleep(0.25)

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=False)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        socket = getattr(self, "_socket", None)
        if socket is not None:
            socket.close()
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
