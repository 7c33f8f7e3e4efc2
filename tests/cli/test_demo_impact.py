"""`signals demo` shows impact telling the planted real effect from the confounded one."""

from __future__ import annotations

import json


def test_demo_tells_the_real_effect_from_the_confounded_one(cli):
    result = cli("demo", "--json")
    assert result.exit_code == 0, result.stderr
    impact = {r["integration"]: r for r in json.loads(result.stdout)["impact"]["integrations"]}
    snowflake, salesforce = impact["snowflake"], impact["salesforce"]
    # Snowflake really lowers churn: the matched interval is clear of zero.
    assert snowflake["measurable"] and snowflake["lift_ci95"][1] < 0
    assert snowflake["band"] in ("strong", "critical")
    # Salesforce only looks good because big accounts adopt it: naive gap, no matched effect.
    assert salesforce["naive_lift"] < -5
    assert not salesforce["measurable"] and salesforce["band"] == "negligible"
    assert salesforce["lift_ci95"][0] < 0 < salesforce["lift_ci95"][1]
