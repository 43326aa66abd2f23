import numpy as np
import pytest

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def unwritten_elements_show(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reference allocates some results without zeroing them, because every element is
    written afterwards (reference_impl.backward.uninitialised). In the tests that memory is NaN,
    so an element left unwritten fails a comparison instead of reading as whatever the memory
    held, often 0, which would hide exactly the zeros a missing write should have put there."""
    from reference_impl import backward

    monkeypatch.setattr(backward, "uninitialised", lambda shape, dtype: np.full(shape, np.nan, dtype=dtype))
