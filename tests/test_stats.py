"""One percentile convention for the whole course (q in 0-100, linear interpolation)."""

import pytest

from cloudlab.stats import percentile


def test_percentile_interpolates_like_numpy():
    np = pytest.importorskip("numpy")
    data = [0.3, 0.1, 0.9, 0.5, 0.7, 0.2]
    for q in (0, 5, 50, 95, 99, 100):
        assert percentile(data, q) == pytest.approx(float(np.percentile(data, q)))
    assert percentile(range(1, 101), 95) == pytest.approx(95.05)


def test_percentile_edge_cases():
    assert percentile([3.0], 95) == 3.0
    assert percentile([], 95) is None
    assert percentile([1, float("nan"), None, 3], 50) == 2.0


@pytest.mark.parametrize("q", [0.95, 0.5, 101, -1, "p95"])
def test_percentile_refuses_the_wrong_scale(q):
    with pytest.raises(ValueError, match="percent|0 to 100"):
        percentile([1, 2, 3], q)
