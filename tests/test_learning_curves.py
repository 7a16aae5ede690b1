"""Learning-curve figure: exploration column, log scale when the range needs it (issue 14)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ltos_traffic.report import exploration_column, needs_log_scale, plot_learning_curves


def _rows() -> pd.DataFrame:
    common = {"phase": "train", "scenario": "grid6x6_v1", "episode_return": -1e4}
    rows = []
    for k in range(3):
        q = {"controller": "qmix", "epsilon": 0.4 * 0.9**k, "avg_travel_time_s": 2000.0}
        nc = {"controller": "neurcomm", "entropy": 1.38, "avg_travel_time_s": 500.0 - k}
        rows += [{**q, **common, "episode": k}, {**nc, **common, "episode": k}]
    dgn = {"controller": "dgn", "epsilon": 0.4, "entropy": np.nan, "avg_travel_time_s": 120.0}
    rows.append({**dgn, **common, "episode": 0})
    return pd.DataFrame(rows)


def test_exploration_is_epsilon_else_entropy() -> None:
    train = _rows()
    explored = exploration_column(train)
    assert explored[train["controller"] == "neurcomm"].eq(1.38).all()
    np.testing.assert_allclose(explored[train["controller"] == "qmix"], [0.4, 0.36, 0.324])


def test_travel_time_axis_is_logarithmic_only_when_the_range_needs_it(tmp_path: Path) -> None:
    assert needs_log_scale(pd.Series([120.0, 2000.0]))
    assert not needs_log_scale(pd.Series([110.0, 321.0, np.nan]))
    colours = {"qmix": "C0", "neurcomm": "C1", "dgn": "C2"}
    path = plot_learning_curves(_rows(), "grid6x6_v1", colours, tmp_path / "curves.png")
    assert path is not None and path.stat().st_size > 0
