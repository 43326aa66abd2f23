"""Built-in implementations: other frameworks' grouped convolutions, each behind the plug-in interface.

A built-in name (``--impl jax``) is loaded exactly like ``--impl MODULE``: ``BUILTINS`` maps the
name to an adapter module defining ``conv2d`` with ``torch.nn.functional.conv2d``'s signature and
``version() -> str``. Each adapter calls its framework's own grouped convolution and padding ops
and never computes anything itself, so a framework's bug cannot be masked; what the framework
cannot express raises :class:`conformance.judging.outcomes.Unsupported`. The layout conversions (kernel
layouts, pad orders) are documented once, in docs/frameworks.md, and in each adapter's docstring.

Importing this package imports no framework: whether one is installed is found with
``importlib.util.find_spec``, which does not run the package.

>>> sorted(BUILTINS)[:3]
['executorch', 'iree', 'jax']
>>> BUILTINS["jax"]
'conformance.frameworks.jax_lax'
>>> status("no-such-framework")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
KeyError: "no built-in implementation 'no-such-framework'; built-ins: executorch, iree, jax, ..."
"""

from __future__ import annotations

import importlib.util
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

CONSTRAINTS_FILE = "constraints-frameworks.txt"
# Where `make frameworks` builds the own environments of columns whose pins clash with .venv's
# (one folder per column, e.g. .venv-frameworks/paddle); CONFORMANCE_FRAMEWORK_VENVS moves it.
VENVS_DIR = ".venv-frameworks"


@dataclass(frozen=True)
class Builtin:
    """One built-in: its adapter module, the importable packages it needs, the pip requirements
    that install them, and what else it needs on the machine."""

    name: str
    module: str
    imports: tuple[str, ...]  # top-level packages the adapter imports
    requirements: tuple[str, ...]  # what `pip install -c constraints-frameworks.txt ...` installs
    summary: str  # the framework op it calls, and its settings
    compiler: tuple[str, ...] = ()  # a C/C++ compiler it needs at run time (any one of these)
    # The GitHub repositories ("owner/name") where this column's findings are tracked: a case file's
    # "Tracker:" link is pinned for this column only when it points into one of them.
    trackers: tuple[str, ...] = ()
    # The column computing the same op on the code path this processor's default would otherwise pick
    # (oneDNN off, f32): a case whose verdict differs between the two is a pin that depends on the processor.
    counterpart: str = ""
    # Its own venv (a folder under VENVS_DIR) when its pins clash with the harness's; its worker
    # runs that venv's Python, installed from this constraints file. Empty: it lives in .venv.
    venv: str = ""
    venv_constraints: str = ""


_ALL = (
    Builtin(
        "jax",
        "conformance.frameworks.jax_lax",
        ("jax", "jaxlib"),
        ("jax", "jaxlib"),
        "jax.lax.conv_general_dilated(feature_group_count=groups), CPU, precision=HIGHEST",
        trackers=("jax-ml/jax", "google/jax", "openxla/xla"),
    ),
    Builtin(
        "onnxruntime",
        "conformance.frameworks.onnxruntime_node",
        ("onnx", "onnxruntime"),
        ("onnx", "onnxruntime"),
        "a one-node ONNX Conv(group=groups) (+ Pad for padding modes), CPU execution provider",
        trackers=("microsoft/onnxruntime",),
    ),
    Builtin(
        "onnx-reference",
        "conformance.frameworks.onnx_reference",
        ("onnx",),
        ("onnx",),
        "the same one-node ONNX model through onnx.reference.ReferenceEvaluator",
        trackers=("onnx/onnx",),
    ),
    Builtin(
        "torch-onnx",
        "conformance.frameworks.torch_onnx",
        ("onnx", "onnxruntime", "onnxscript"),
        ("onnx", "onnxruntime", "onnxscript"),
        "torch.onnx.export(nn.Conv2d, dynamo=True), run in ONNX Runtime (CPU)",
        trackers=("pytorch/pytorch", "microsoft/onnxruntime", "microsoft/onnxscript"),
    ),
    Builtin(
        "torch-onnx-legacy",
        "conformance.frameworks.torch_onnx_legacy",
        ("onnx", "onnxruntime"),
        ("onnx", "onnxruntime"),
        "torch.onnx.export(nn.Conv2d, dynamo=False) (the TorchScript exporter), run in ONNX Runtime (CPU)",
        trackers=("pytorch/pytorch", "microsoft/onnxruntime"),
    ),
    Builtin(
        "tensorflow",
        "conformance.frameworks.tensorflow_nn",
        ("tensorflow",),
        ("tensorflow-cpu",),
        "tf.nn.conv2d, NHWC, groups inferred from the filter's input depth, oneDNN on (TF_ENABLE_ONEDNN_OPTS=1)",
        trackers=("tensorflow/tensorflow",),
        counterpart="tensorflow-no-onednn",
    ),
    Builtin(
        "tensorflow-no-onednn",
        "conformance.frameworks.tensorflow_nn_no_onednn",
        ("tensorflow",),
        ("tensorflow-cpu",),
        "tf.nn.conv2d as `tensorflow`, oneDNN off (TF_ENABLE_ONEDNN_OPTS=0): TensorFlow's own kernels",
        trackers=("tensorflow/tensorflow",),
    ),
    Builtin(
        "tensorflow-depthwise",
        "conformance.frameworks.tensorflow_depthwise",
        ("tensorflow",),
        ("tensorflow-cpu",),
        "tf.nn.depthwise_conv2d, NHWC, depthwise and depth-multiplier layers only, oneDNN on (pinned)",
        trackers=("tensorflow/tensorflow",),
        counterpart="tensorflow-depthwise-no-onednn",
    ),
    Builtin(
        "tensorflow-depthwise-no-onednn",
        "conformance.frameworks.tensorflow_depthwise_no_onednn",
        ("tensorflow",),
        ("tensorflow-cpu",),
        "tf.nn.depthwise_conv2d as `tensorflow-depthwise`, oneDNN off (TF_ENABLE_ONEDNN_OPTS=0)",
        trackers=("tensorflow/tensorflow",),
    ),
    Builtin(
        "keras",
        "conformance.frameworks.keras_layers",
        ("keras", "tensorflow"),
        ("keras", "tensorflow-cpu"),
        "keras.layers.Conv2D(groups=groups), TensorFlow backend, channels_last, oneDNN on (pinned)",
        trackers=("keras-team/keras", "tensorflow/tensorflow"),
        counterpart="keras-no-onednn",
    ),
    Builtin(
        "keras-no-onednn",
        "conformance.frameworks.keras_layers_no_onednn",
        ("keras", "tensorflow"),
        ("keras", "tensorflow-cpu"),
        "keras.layers.Conv2D as `keras`, oneDNN off (TF_ENABLE_ONEDNN_OPTS=0)",
        trackers=("keras-team/keras", "tensorflow/tensorflow"),
    ),
    Builtin(
        "openvino",
        "conformance.frameworks.openvino_f32",
        ("openvino",),
        ("openvino",),
        "ov GroupConvolution, CPU plugin, INFERENCE_PRECISION_HINT=f32",
        trackers=("openvinotoolkit/openvino",),
    ),
    Builtin(
        "openvino-bf16",
        "conformance.frameworks.openvino_bf16",
        ("openvino",),
        ("openvino",),
        "ov GroupConvolution, CPU plugin, INFERENCE_PRECISION_HINT=bf16 (the CPU plugin's default where "
        "the processor has bf16)",
        trackers=("openvinotoolkit/openvino", "openvinotoolkit/openvino.genai"),
        counterpart="openvino",
    ),
    Builtin(
        "tinygrad",
        "conformance.frameworks.tinygrad_tensor",
        ("tinygrad",),
        ("tinygrad",),
        "tinygrad Tensor.conv2d(groups=groups), DEV=CPU",
        compiler=("clang",),
        trackers=("tinygrad/tinygrad",),
    ),
    Builtin(
        "torch-compile",
        "conformance.frameworks.torch_compile",
        ("torch",),
        (),
        "torch.compile(nn.Conv2d) with inductor on CPU",
        compiler=("g++", "c++", "clang++"),
        trackers=("pytorch/pytorch",),
    ),
    Builtin(
        "mlx",
        "conformance.frameworks.mlx_core",
        ("mlx",),
        ("mlx[cpu]",),
        "mlx.core.conv1d/2d/3d and conv_transpose1d/2d/3d(groups=groups), channels-last, CPU, dtype pinned",
        trackers=("ml-explore/mlx",),
    ),
    Builtin(
        "paddle",
        "conformance.frameworks.paddle_nn",
        ("paddle",),
        ("paddlepaddle",),
        "paddle.nn.functional.conv1d/2d/3d and conv1d/2d/3d_transpose(groups=groups), NCHW, CPU, "
        "'same'/'valid' as Paddle's 'SAME'/'VALID'",
        venv="paddle",
        venv_constraints="constraints-frameworks-paddle.txt",
        trackers=("PaddlePaddle/Paddle",),
    ),
    Builtin(
        "litert",
        "conformance.frameworks.litert_xnnpack",
        ("ai_edge_litert", "tensorflow"),
        ("ai-edge-litert", "tensorflow-cpu"),
        "a one-layer model (grouped tf.nn.conv2d / tf.nn.depthwise_conv2d) from the TFLite converter, "
        "LiteRT interpreter with its default XNNPACK delegate, 1 thread",
        trackers=("google-ai-edge/LiteRT", "google/XNNPACK", "tensorflow/tensorflow"),
    ),
    Builtin(
        "litert-builtin",
        "conformance.frameworks.litert_builtin",
        ("ai_edge_litert", "tensorflow"),
        ("ai-edge-litert", "tensorflow-cpu"),
        "the same model, LiteRT's builtin kernels (BUILTIN_WITHOUT_DEFAULT_DELEGATES: XNNPACK off), 1 thread",
        trackers=("google-ai-edge/LiteRT", "tensorflow/tensorflow"),
    ),
    Builtin(
        "executorch",
        "conformance.frameworks.executorch_xnnpack",
        ("executorch", "torch"),
        ("executorch",),
        "torch.export of the nn.Conv*/ConvTranspose* layer, to_edge_transform_and_lower with the XNNPACK "
        "partitioner (the rest on ExecuTorch's portable kernels), ExecuTorch's Python runtime, CPU, 1 thread",
        venv="executorch",
        venv_constraints="constraints-frameworks-executorch.txt",
        trackers=("pytorch/executorch", "google/XNNPACK", "pytorch/pytorch"),
    ),
    Builtin(
        "iree",
        "conformance.frameworks.iree_onnx",
        ("iree.compiler", "iree.runtime", "onnx"),
        ("iree-base-compiler", "iree-base-runtime", "onnx"),
        "the one-node ONNX Conv/ConvTranspose(group=groups) imported by IREE's ONNX importer, compiled "
        "for llvm-cpu (target-cpu=generic; circular padding as Slice+Concat), IREE runtime local-sync",
        trackers=("iree-org/iree", "llvm/torch-mlir"),  # torch-mlir: IREE's ONNX importer and lowering
    ),
)

BUILTINS: dict[str, str] = {builtin.name: builtin.module for builtin in sorted(_ALL, key=lambda b: b.name)}
"""Built-in name -> adapter module (the plug-in loader imports it lazily and treats it like ``--impl MODULE``)."""

_BY_NAME = {builtin.name: builtin for builtin in _ALL}


@dataclass(frozen=True)
class Availability:
    """Whether a built-in can run here; if not, why and how to install it."""

    name: str
    installed: bool
    reason: str = ""  # empty when installed
    install_command: str = ""  # empty when installed, or when pip cannot help (a system compiler)


def builtin(name: str) -> Builtin:
    """The description of built-in ``name`` (KeyError naming the built-ins if there is none)."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"no built-in implementation {name!r}; built-ins: {', '.join(BUILTINS)}") from None


def install_command(name: str) -> str:
    """The command that installs what built-in ``name`` needs, pinned by constraints-frameworks.txt
    (or, for a column with its own venv, by that venv's constraints file).

    >>> install_command("jax")
    '.venv/bin/pip install -c constraints-frameworks.txt jax jaxlib   (or: make frameworks)'
    >>> for part in install_command("paddle").split(" && "):
    ...     print(part)
    python3.11 -m venv .venv-frameworks/paddle
    .venv-frameworks/paddle/bin/pip install -r constraints-frameworks-paddle.txt   (or: make frameworks)
    """
    description = builtin(name)
    if description.venv:
        folder = f"{VENVS_DIR}/{description.venv}"
        return (
            f"python3.11 -m venv {folder} && {folder}/bin/pip install -r {description.venv_constraints}"
            "   (or: make frameworks)"
        )
    requirements = description.requirements
    if not requirements:
        return ""
    return f".venv/bin/pip install -c {CONSTRAINTS_FILE} {' '.join(requirements)}   (or: make frameworks)"


def venv_python(name: str) -> Path | None:
    """The Python of built-in ``name``'s own venv (None for a column that lives in .venv); the path
    whether or not it exists yet.

    >>> venv_python("jax") is None, venv_python("paddle").parts[-4:]
    (True, ('.venv-frameworks', 'paddle', 'bin', 'python'))
    """
    description = _BY_NAME.get(name)
    if description is None or not description.venv:
        return None
    root = os.environ.get("CONFORMANCE_FRAMEWORK_VENVS") or str(project_root() / VENVS_DIR)
    return Path(root) / description.venv / "bin" / "python"


def own_venv() -> str:
    """For the version line of an adapter that runs in its own venv (venv_python): which venv, and
    the Python and NumPy in it."""
    import numpy as np

    return f"own venv {sys.prefix} (Python {platform.python_version()}, numpy {np.__version__})"


def own_venv_facts(prefix: str) -> dict[str, str]:
    """The same as environment facts, under ``prefix`` (e.g. "paddle"): ``<prefix>.python``,
    ``<prefix>.numpy`` and ``<prefix>.venv``."""
    import numpy as np

    return {
        f"{prefix}.python": platform.python_version(),
        f"{prefix}.numpy": np.__version__,
        f"{prefix}.venv": sys.prefix,
    }


def project_root() -> Path:
    """The folder holding the ``conformance`` package (the checkout, for an editable install)."""
    return Path(__file__).resolve().parents[2]


def _missing_in(python: Path, packages: tuple[str, ...]) -> list[str]:
    """Which of ``packages`` that interpreter cannot find (found without importing them)."""
    probe = (
        "import importlib.util, sys; print(' '.join(p for p in sys.argv[1:] if importlib.util.find_spec(p) is None))"
    )
    try:
        done = subprocess.run(
            [str(python), "-c", probe, *packages], capture_output=True, text=True, timeout=60, check=True
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return [f"{' '.join(packages)} (its Python does not run: {exc})"]
    return done.stdout.split()


def status(name: str) -> Availability:
    """Whether built-in ``name`` is installed (its packages importable, its compiler present),
    found without importing any framework; for a column with its own venv, in that venv."""
    description = builtin(name)
    python = venv_python(name)
    if python is not None:
        if not python.exists():
            return Availability(name, False, f"not installed: no venv at {python.parents[1]}", install_command(name))
        missing = _missing_in(python, description.imports)
        if missing:
            where = python.parents[1]
            return Availability(
                name, False, f"not installed: no module {', '.join(missing)} in {where}", install_command(name)
            )
        return Availability(name, True)
    missing = [package for package in description.imports if not _importable(package)]
    if missing:
        return Availability(name, False, f"not installed: no module {', '.join(missing)}", install_command(name))
    if description.compiler and not any(shutil.which(program) for program in description.compiler):
        wanted = " or ".join(description.compiler)
        return Availability(
            name,
            False,
            f"needs a C/C++ compiler at run time ({wanted}), none on PATH",
            f"apt-get install {'clang' if 'clang' in description.compiler else 'g++'}",
        )
    return Availability(name, True)


def _importable(module: str) -> bool:
    """Whether ``module`` can be found without importing it. A dotted name whose parent package is
    missing (``iree.compiler`` without ``iree``) makes find_spec raise instead of returning None.

    >>> _importable("json"), _importable("no_such_package.sub")
    (True, False)
    """
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def installed_builtins() -> list[str]:
    """The names of the built-ins that can run here, in BUILTINS order."""
    return [name for name in BUILTINS if status(name).installed]
