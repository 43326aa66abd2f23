"""How every JSON file the harness writes holds a float: finite floats as JSON numbers, a missing
value as ``null``, and the non-finite ones (which JSON has no literal for) as the strings
``"inf"``, ``"-inf"`` and ``"nan"``, so a reader can tell "infinitely wrong" from "not measured".
docs/commands.md states it for readers.

>>> [json_float(v) for v in (1.5, None, float("inf"), -float("inf"), float("nan"))]
[1.5, None, 'inf', '-inf', 'nan']
>>> json_text({"error": json_float(float("nan"))})
'{"error": "nan"}'
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np


def json_float(value: float | np.floating | None) -> float | str | None:
    """``value`` as the harness writes it to JSON (see the module docstring)."""
    if value is None:
        return None
    value = float(value)
    if math.isfinite(value):
        return value
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def json_text(document: Any, indent: int | None = None) -> str:
    """``document`` as JSON text; a non-finite float left unconverted raises ValueError instead of
    being written as the non-JSON ``Infinity``/``NaN``."""
    return json.dumps(document, indent=indent, allow_nan=False)
