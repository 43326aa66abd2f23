"""A plain-text progress bar on stderr, so stdout stays the table (and pipes cleanly).

On a terminal the bar redraws itself in place; anywhere else (CI logs, files) it writes one line
per step instead of carriage returns.
"""

from __future__ import annotations

import sys
from typing import TextIO


class ProgressBar:
    """``[#####-----] 3/7 label``.

    >>> import io
    >>> stream = io.StringIO()
    >>> bar = ProgressBar(2, stream=stream, width=4)
    >>> bar.step("a"); bar.step("b"); bar.close()
    >>> stream.getvalue().splitlines()
    ['[----] 0/2 a', '[##--] 1/2 b', '[####] 2/2 done']
    """

    def __init__(self, total: int, stream: TextIO | None = None, width: int = 30) -> None:
        self.total = max(total, 0)
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.done = 0
        self._started = False
        self.in_place = bool(getattr(self.stream, "isatty", lambda: False)())

    def _draw(self, label: str) -> None:
        filled = self.width * self.done // self.total if self.total else self.width
        line = f"[{'#' * filled}{'-' * (self.width - filled)}] {self.done}/{self.total} {label}"
        if self.in_place:
            self.stream.write("\r\033[K" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def step(self, label: str) -> None:
        """Show that the work on ``label`` starts; the previous step counts as done."""
        if self._started:
            self.done += 1
        self._started = True
        self._draw(label)

    def close(self) -> None:
        if self._started:
            self.done += 1
        self._draw("done")
        if self.in_place:
            self.stream.write("\n")
            self.stream.flush()
