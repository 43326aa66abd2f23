"""The pytest plugin, under the name conftest files list: ``pytest_plugins = ["conformance.pytest_plugin"]``.

The plugin itself is the top-level module ``conformance_pytest`` (importing it does not import this
package, which pytest's entry point must avoid); this module only re-exports it, so both names
give the same hooks, stash keys and classes.
"""

from conformance_pytest import *  # noqa: F403 - the hooks, as this module's own attributes
from conformance_pytest import __all__  # noqa: F401
