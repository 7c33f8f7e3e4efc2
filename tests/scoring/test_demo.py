"""`signals demo` scores every account and shows Acme's card."""

from __future__ import annotations

import json


def test_demo_scores_everyone_and_acme_is_healthy_with_zendesk_its_weakest_link(cli):
    result = cli("demo", "--accounts", "40", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["scoring"]["rescored"] == 40
    acme = data["acme"]
    assert acme["name"] == "Acme Corp" and acme["band"] == "healthy"
    scores = {name: c["score"] for name, c in acme["components"].items()}
    assert min(scores, key=scores.get) == "health_status"
    assert acme["components"]["health_status"]["reason"].startswith("Zendesk: ")
    assert acme["active_integrations"] == 7
    card = cli("health", "acme")
    assert "OVERALL INTEGRATION SCORE" in card.stdout and "Healthy" in card.stdout
