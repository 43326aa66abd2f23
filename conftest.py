"""Makes every YAML case under cases/ a pytest test (see conformance/pytest_plugin.py).

The plugin is also registered by the package's pytest11 entry point; listing it here keeps the
suite working where the project is not installed (plain PYTHONPATH) or plugin autoloading is off.
Both name it "conformance.pytest_plugin", so it is registered once. Which folders hold cases is
pyproject.toml's ini option conformance_cases.
"""

from reference_impl.algorithms import numba_available

pytest_plugins = ["conformance.pytest_plugin"]

# --doctest-modules imports every module; the numba kernel's module needs numba (optional).
collect_ignore = [] if numba_available() else ["reference_impl/algorithms/compiled_kernel.py"]
