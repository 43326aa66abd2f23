"""The lesson page's own JavaScript convolution as a plug-in: every op of torch.nn.functional, run
by node on the case's arrays (conformance/teaching/lesson_assets/conv.js, the file the page inlines).

One node process per Python process reads one request per line (the arrays as base64 float64) and
answers one line: the output, or the refusal JS raised, which becomes a ValueError as torch's
refusals are judged. `conformance run --impl tests/plugins/lesson_js.py cases` gates it.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

CONV_JS = Path(__file__).resolve().parents[2] / "conformance" / "teaching" / "lesson_assets" / "conv.js"
# The driver: each request line is {x, xShape, w, wShape, b, options}; each answer {data, shape} or {error}.
DRIVER = r"""
const conv = require(process.argv[1]);
const readline = require("readline");
const decode = (text) => { const bytes = Buffer.from(text, "base64");
  return new Float64Array(bytes.buffer, bytes.byteOffset, bytes.length / 8); };
readline.createInterface({ input: process.stdin }).on("line", (line) => {
  const r = JSON.parse(line);
  let answer;
  try {
    const y = conv.convolve(decode(r.x), r.xShape, decode(r.w), r.wShape, r.b === null ? null : decode(r.b), r.options);
    answer = { data: Buffer.from(y.data.buffer).toString("base64"), shape: y.shape };
  } catch (error) {
    answer = { error: String(error && error.message), refusal: !!(error && error.refusal) };
  }
  process.stdout.write(JSON.stringify(answer) + "\n");
});
"""

_node: subprocess.Popen[str] | None = None


def node_binary() -> str | None:
    return shutil.which("node") or shutil.which("nodejs")


def _process() -> subprocess.Popen[str]:
    global _node
    if _node is None or _node.poll() is not None:
        binary = node_binary()
        if binary is None:
            raise NotImplementedError("node is not installed: the lesson's JS convolution cannot run")
        _node = subprocess.Popen(
            [binary, "-e", DRIVER, str(CONV_JS)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
    return _node


def _encode(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype="<f8").tobytes()).decode("ascii")


def _plain(value: Any) -> Any:
    """Tuples as lists, NumPy integers as ints: JSON for the JS side."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return int(value) if isinstance(value, (int, np.integer)) else value


def _run(input: Any, weight: Any, bias: Any, options: dict[str, Any]) -> np.ndarray:
    x, w = np.asarray(input), np.asarray(weight)
    unbatched = x.ndim == w.ndim - 1  # (C, *spatial): the functional ops accept it; JS wants a batch axis
    batched = x[None] if unbatched else x
    request = {
        "x": _encode(batched),
        "xShape": list(batched.shape),
        "w": _encode(w),
        "wShape": list(w.shape),
        "b": None if bias is None else _encode(np.asarray(bias)),
        "options": {key: _plain(value) for key, value in options.items()},
    }
    node = _process()
    assert node.stdin is not None and node.stdout is not None
    node.stdin.write(json.dumps(request) + "\n")
    node.stdin.flush()
    answer = json.loads(node.stdout.readline())
    if "error" in answer:
        raise (ValueError if answer["refusal"] else RuntimeError)(answer["error"])
    y = np.frombuffer(base64.b64decode(answer["data"]), dtype="<f8").reshape(answer["shape"]).astype(x.dtype)
    return y[0] if unbatched else y


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"):  # type: ignore[no-untyped-def]
    return _run(input, weight, bias, locals_options(stride, padding, dilation, groups, padding_mode))


def locals_options(stride: Any, padding: Any, dilation: Any, groups: Any, padding_mode: str) -> dict[str, Any]:
    return {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups, "padding_mode": padding_mode}


conv2d = conv3d = conv1d  # the JS reads the number of spatial dimensions from the weight


def conv_transpose1d(  # type: ignore[no-untyped-def]
    input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1, padding_mode="zeros"
):
    # padding_mode comes only when a case asks for one; the JS refuses it for a transposed op, as torch does
    options = {
        "padding_mode": padding_mode,
        "transposed": True,
        "stride": stride,
        "padding": padding,
        "output_padding": output_padding,
        "groups": groups,
        "dilation": dilation,
    }
    return _run(input, weight, bias, options)


conv_transpose2d = conv_transpose3d = conv_transpose1d
