"""Makes every YAML case under cases/ a pytest test (see conformance/pytest_plugin.py)."""
from reference_impl.algorithms import numba_available

pytest_plugins = ["conformance.pytest_plugin"]

# --doctest-modules imports every module; the numba kernel's module needs numba (optional).
collect_ignore = [] if numba_available() else ["reference_impl/algorithms/compiled_kernel.py"]
