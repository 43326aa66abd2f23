"""Makes every YAML case under cases/ a pytest test (see conformance/pytest_plugin.py)."""
pytest_plugins = ["conformance.pytest_plugin"]
