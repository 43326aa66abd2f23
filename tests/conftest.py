import numpy as np
import pytest

from reference_impl.algorithms import numba_available

pytest_plugins = ["pytester"]

# numba loaded once, with the modules its first compilation imports, before any test: pytester's
# in-process runs restore sys.modules afterwards, so modules numba first imported inside one were
# dropped and imported again by the next, which numba refuses ("duplicate registration for
# PolynomialType": tests/test_benchmarks.py failed whenever it ran before anything else had
# compiled with numba, i.e. alone, or first on an xdist worker).
if numba_available():
    import numba

    numba.njit(lambda: 0)()


@pytest.fixture(autouse=True)
def unwritten_elements_show(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reference allocates some results without zeroing them, because every element is
    written afterwards (reference_impl.phase_gradient.uninitialised). In the tests that memory is NaN,
    so an element left unwritten fails a comparison instead of reading as whatever the memory
    held, often 0, which would hide exactly the zeros a missing write should have put there."""
    from reference_impl import phase_gradient

    monkeypatch.setattr(phase_gradient, "uninitialised", lambda shape, dtype: np.full(shape, np.nan, dtype=dtype))
