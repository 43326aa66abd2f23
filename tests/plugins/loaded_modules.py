"""What a worker process has imported (tests/test_frameworks_runtimes.py asks a foreign-venv worker)."""

from __future__ import annotations

import sys

HEAVY = ("torch", "jsonschema", "conformance.api", "conformance.running.runner", "conformance.tools.matrix")


def heavy_modules() -> list[str]:
    """The modules of HEAVY this process has loaded: a foreign-venv worker must have none."""
    return sorted(name for name in HEAVY if name in sys.modules)
