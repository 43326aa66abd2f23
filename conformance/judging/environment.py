"""The facts of the environment that can change a verdict, as flat strings.

A framework's answer for the same layer can depend on the processor (TensorFlow's oneDNN kernels
are on by default only on some CPUs), on versions and on thread counts. Every result records
these facts (``conformance run --json``'s ``"environment"``, JUnit properties ``env.<fact>``), and
an xfail entry's ``when:`` is matched against them (conformance/judging/xfail.py), so a pin can
hold only where it applies.

Keys are dotted names, values plain strings; the ISA flags that matter to convolution kernels are
``"yes"``/``"no"`` (``"unknown"`` where the flags cannot be read)::

    {"platform.machine": "x86_64", "cpu.vendor": "AuthenticAMD", "cpu.avx2": "yes",
     "cpu.avx512f": "no", "torch.version": "2.13.0", "threads.torch": "1", ...}

An implementation that has an ``environment()`` method (a framework adapter's settings, such as
``{"tensorflow.onednn": "on"}``) adds its facts; a failing ``environment()`` is recorded as the fact
``implementation.environment_error`` rather than ending the run.

>>> facts = environment_facts()
>>> facts["cpu.avx2"] in ("yes", "no", "unknown") and all(isinstance(v, str) for v in facts.values())
True
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from typing import Any

# ISA features that select different convolution kernels: fact name -> the /proc/cpuinfo flags
# (any of them) that mean "yes".
ISA_FLAGS: dict[str, tuple[str, ...]] = {
    "cpu.avx2": ("avx2",),
    "cpu.avx512f": ("avx512f",),
    "cpu.avx512_bf16": ("avx512_bf16",),
    "cpu.amx": ("amx_tile", "amx_bf16", "amx_int8"),
}
CPUINFO = "/proc/cpuinfo"


def environment_facts(implementation: Any = None) -> dict[str, str]:
    """The facts (see the module docstring), plus ``implementation.environment()`` when it has one."""
    facts = {
        "platform.system": platform.system(),
        "platform.machine": platform.machine(),
        **cpu_facts(),
        "python.version": platform.python_version(),
        "numpy.version": _version("numpy"),
        "torch.version": _version("torch"),
        **thread_facts(),
    }
    environment = getattr(implementation, "environment", None)
    if callable(environment):
        try:
            extra = environment()
        except Exception as exc:  # noqa: BLE001 - a broken adapter setting must not end the run
            facts["implementation.environment_error"] = f"{type(exc).__name__}: {exc}"
        else:
            facts.update({str(key): str(value) for key, value in dict(extra or {}).items()})
    return facts


def cpu_facts(cpuinfo: str | None = None) -> dict[str, str]:
    """``cpu.vendor``, ``cpu.model`` and the ISA flags of :data:`ISA_FLAGS`, from ``cpuinfo`` (the
    text of /proc/cpuinfo; read from the file when None). Where it cannot be read, the vendor and
    model come from :mod:`platform` and the flags are ``"unknown"``.

    >>> cpu_facts("vendor_id : GenuineIntel\\nmodel name : Xeon\\nflags : fpu avx2 avx512f amx_tile\\n")["cpu.amx"]
    'yes'
    >>> cpu_facts("vendor_id : AuthenticAMD\\nmodel name : EPYC\\nflags : fpu avx2\\n")["cpu.avx512f"]
    'no'
    """
    if cpuinfo is None:
        try:
            with open(CPUINFO, encoding="utf-8", errors="replace") as file:
                cpuinfo = file.read()
        except OSError:
            cpuinfo = ""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, separator, value = line.partition(":")
        key = key.strip()
        if separator and key and key not in fields:  # the first processor speaks for all
            fields[key] = value.strip()
    flags_text = fields.get("flags", fields.get("Features"))  # x86, arm64
    flags = set(flags_text.split()) if flags_text is not None else None
    facts = {
        "cpu.vendor": fields.get("vendor_id") or fields.get("CPU implementer") or platform.processor() or "unknown",
        "cpu.model": fields.get("model name") or platform.processor() or platform.machine() or "unknown",
    }
    for fact, names in ISA_FLAGS.items():
        facts[fact] = "unknown" if flags is None else ("yes" if flags.intersection(names) else "no")
    return facts


def thread_facts() -> dict[str, str]:
    """``threads.cpus`` (logical CPUs); torch's intra-op thread count when torch is loaded and
    NumPy's BLAS threads (through threadpoolctl) when NumPy is, each read as it is now:
    ``conformance run --threads`` has set them by then."""
    facts = {"threads.cpus": str(os.cpu_count() or "unknown")}
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "get_num_threads"):
        facts["threads.torch"] = str(torch.get_num_threads())
    if "numpy" in sys.modules:
        try:
            from threadpoolctl import threadpool_info
        except ImportError:
            return facts
        counts = [info.get("num_threads") for info in threadpool_info() if info.get("user_api") == "blas"]
        if any(counts):
            facts["threads.blas"] = str(max(count for count in counts if count))
    return facts


def _version(distribution: str) -> str:
    module = sys.modules.get(distribution)
    version = getattr(module, "__version__", None)
    if version is not None:  # the one actually loaded
        return str(version)
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"
