"""mlcd api under the other reading of each inferred API behaviour (mlcd.sim.apiroles dialects).

Default readings are covered by test_api_deploy.py; here: integer class labels and a heavy status
that gives one ``publicURL`` instead of ``apiNodes`` (how dataikuapi reads non-static infrastructures).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from support.apienv import start_api_env


@pytest.mark.parametrize(
    "dialect",
    [
        pytest.param({"labels": "int", "service_urls": "publicURL"}, marks=pytest.mark.slow),
        pytest.param({"labels": "int"}, marks=pytest.mark.slow),
        pytest.param({"service_urls": "publicURL"}, marks=pytest.mark.slow),
    ],
)
def test_good_version_passes_and_wrong_version_is_reverted_under_each_reading(
    tmp_path: Path, dialect: dict[str, str]
) -> None:
    with start_api_env(tmp_path, dialect=dialect) as api:
        good = api.deploy("churn_v1")
        assert good.returncode == 0, good.stderr
        gates = api.stage("deploy")["details"]["gates"][0]
        assert gates["correctness"]["score"] == 1.0 and gates["load"]["errors"] == 0
        api.set_behaviour(degraded=True)
        wrong = api.deploy("churn_v2")
        assert wrong.returncode == 3 and "accuracy 0 below" in wrong.stderr
        assert api.deployed_version() == "churn_v1"


def test_an_unknown_dialect_reading_stops_the_stand_in(tmp_path: Path) -> None:
    from mlcd.sim.apiroles import read_dialect

    (tmp_path / "dialect.json").write_text('{"labels": "float"}')
    with pytest.raises(ValueError, match="labels"):
        read_dialect(tmp_path)
