"""Drive headless Chromium through the DevTools protocol over a pipe, with the standard library only.

``--remote-debugging-pipe`` makes Chromium read protocol commands from file descriptor 3 and write
answers and events to descriptor 4, each message a JSON object ended by a NUL byte: no port, no
websocket, no extra package.

    with Chromium.start() as browser:
        page = browser.open(Path("report/index.html"))
        page.evaluate("document.title"), page.errors, page.screenshot(Path("shot.png"))
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BINARIES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--hide-scrollbars",
    "--mute-audio",
    "--window-size=1280,900",
    "--remote-debugging-pipe",
)


class BrowserError(Exception):
    """Chromium did not start, answered with an error, or took too long."""


def find_chromium() -> str | None:
    for name in BINARIES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class Page:
    """One tab, attached with a flat session."""

    browser: Chromium
    session: str
    errors: list[str] = field(default_factory=list)  # console errors, uncaught exceptions, failed loads

    def command(self, method: str, params: dict | None = None, timeout: float = 20.0) -> dict:
        return self.browser.command(method, params, session=self.session, timeout=timeout)

    def navigate(self, url: str, timeout: float = 20.0) -> None:
        self.browser.drain(self)
        self.command("Page.navigate", {"url": url})
        self.browser.wait_for("Page.loadEventFired", self, timeout)
        time.sleep(0.05)
        self.browser.drain(self)  # errors logged while loading

    def set_viewport(self, width: int, height: int = 900, mobile: bool | None = None) -> None:
        """Lay pages out at ``width`` CSS pixels, as a phone does when ``mobile`` (default: below 600 px):
        then the page's viewport meta decides the layout width. Applies from the next navigation."""
        self.command(
            "Emulation.setDeviceMetricsOverride",
            {
                "width": width,
                "height": height,
                "deviceScaleFactor": 1,
                "mobile": width < 600 if mobile is None else mobile,
            },
        )

    def evaluate(self, expression: str) -> Any:
        answer = self.command(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True}
        )
        if "exceptionDetails" in answer:
            raise BrowserError(f"evaluating {expression[:60]!r} threw: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    def screenshot(self, path: Path, max_height: int = 6000) -> Path:
        """The whole page (up to ``max_height`` CSS pixels) as a PNG."""
        size = self.command("Page.getLayoutMetrics")["cssContentSize"]
        clip = {
            "x": 0,
            "y": 0,
            "width": max(1, int(size["width"])),
            "height": max(1, min(int(size["height"]), max_height)),
            "scale": 1,
        }
        data = self.command(
            "Page.captureScreenshot", {"format": "png", "clip": clip, "captureBeyondViewport": True}, timeout=30.0
        )["data"]
        path.write_bytes(base64.b64decode(data))
        return path


class Chromium:
    """A headless Chromium process and its protocol pipe."""

    def __init__(self, process: subprocess.Popen, to_browser: int, from_browser: int, profile: str) -> None:
        self.process, self.to_browser, self.from_browser, self.profile = process, to_browser, from_browser, profile
        self.next_id = 0
        self.buffer = b""
        self.pending: list[dict] = []  # messages read while waiting for something else

    @classmethod
    def start(cls, binary: str | None = None) -> Chromium:
        binary = binary or find_chromium()
        if binary is None:
            raise BrowserError("no Chromium found (looked for " + ", ".join(BINARIES) + ")")
        profile = tempfile.mkdtemp(prefix="conformance-chromium-")
        commands_read, commands_write = os.pipe()  # we write, Chromium reads on its fd 3
        events_read, events_write = os.pipe()  # Chromium writes on its fd 4, we read
        # Chromium's ends go above 9 first, so that putting them on 3 and 4 cannot overwrite each other.
        commands_read, events_write = (_move_above(fd, 10) for fd in (commands_read, events_write))
        # bash moves the two pipe ends onto descriptors 3 and 4, then becomes Chromium.
        script = f'exec "$0" "$@" 3<&{commands_read} 4>&{events_write} {commands_read}<&- {events_write}>&-'
        process = subprocess.Popen(
            ["bash", "-c", script, binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            pass_fds=(commands_read, events_write),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(commands_read)
        os.close(events_write)
        browser = cls(process, commands_write, events_read, profile)
        try:
            browser.command("Browser.getVersion", timeout=30.0)
        except BrowserError:
            browser.close()
            raise
        return browser

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            if self.process.poll() is None:
                try:
                    self._send({"id": -1, "method": "Browser.close"})
                    self.process.wait(timeout=5)
                except (OSError, subprocess.TimeoutExpired):
                    self.process.kill()
                    self.process.wait(timeout=5)
        finally:
            for fd in (self.to_browser, self.from_browser):
                try:
                    os.close(fd)
                except OSError:
                    pass
            shutil.rmtree(self.profile, ignore_errors=True)

    # --- the wire ------------------------------------------------------------------------------

    def _send(self, message: dict) -> None:
        data = json.dumps(message).encode("utf-8") + b"\0"
        while data:
            data = data[os.write(self.to_browser, data) :]

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BrowserError("Chromium did not answer in time")
            ready, _, _ = select.select([self.from_browser], [], [], remaining)
            if ready:
                chunk = os.read(self.from_browser, 1 << 20)
                if not chunk:
                    raise BrowserError(f"Chromium closed the pipe (exit status {self.process.poll()})")
                self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def _next(self, deadline: float, predicate) -> dict:
        for i, message in enumerate(self.pending):
            if predicate(message):
                return self.pending.pop(i)
        while True:
            message = self._read(deadline)
            if predicate(message):
                return message
            self.pending.append(message)

    def command(
        self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 20.0
    ) -> dict:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self._send(message)
        answer = self._next(time.monotonic() + timeout, lambda m, i=self.next_id: m.get("id") == i)
        if "error" in answer:
            raise BrowserError(f"{method} failed: {answer['error']}")
        return answer.get("result", {})

    def wait_for(self, event: str, page: Page, timeout: float) -> dict:
        return self._next(
            time.monotonic() + timeout, lambda m: m.get("method") == event and m.get("sessionId") == page.session
        )

    def drain(self, page: Page) -> None:
        """Read what has arrived so far and record the page's errors."""
        deadline = time.monotonic() + 0.01
        try:
            while True:
                self.pending.append(self._read(deadline))
        except BrowserError:
            pass
        kept = []
        for message in self.pending:
            if message.get("sessionId") == page.session and _error_text(message) is not None:
                page.errors.append(_error_text(message))  # type: ignore[arg-type]
            else:
                kept.append(message)
        self.pending = kept

    # --- pages ---------------------------------------------------------------------------------

    def open(self, path_or_url: Path | str) -> Page:
        """A new tab with console, log and page events on, navigated to ``path_or_url``."""
        target = self.command("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.command("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        for domain in ("Page", "Runtime", "Log"):
            page.command(f"{domain}.enable")
        url = path_or_url.resolve().as_uri() if isinstance(path_or_url, Path) else path_or_url
        page.navigate(url)
        return page


def _move_above(fd: int, minimum: int) -> int:
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, minimum)
    os.close(fd)
    return moved


def _error_text(message: dict) -> str | None:
    """The text of a console error, an uncaught exception or an error log entry (a failed load)."""
    method, params = message.get("method"), message.get("params", {})
    if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
        return "console.error: " + " ".join(str(arg.get("value", arg.get("description", ""))) for arg in params["args"])
    if method == "Runtime.exceptionThrown":
        details = params.get("exceptionDetails", {})
        return "exception: " + str(details.get("exception", {}).get("description", details.get("text", "")))
    if method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
        entry = params["entry"]
        return f"log ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}".rstrip()
    return None
