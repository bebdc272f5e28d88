"""The detector table in docs/anomaly.md is what the evaluation on the shared data prints today."""

from __future__ import annotations

from abidance.anomaly.evaluate import table
from tests.kit import PROJECT_ROOT, shared_data


def test_docs_quote_the_evaluation_table_exactly():
    data = shared_data()
    docs = (PROJECT_ROOT / "docs" / "anomaly.md").read_text()
    quoted = docs.split("<!-- evaluation -->\n", 1)[1].split("\n<!-- /evaluation -->", 1)[0]
    assert quoted == table(data), "docs/anomaly.md is stale: run python -m abidance.anomaly.evaluate"


def test_every_detector_finds_most_injections_and_none_fires_on_the_clean_data_but_one_real_crash():
    rows = [r.split(" | ") for r in table(shared_data()).splitlines()[2:]]
    assert len(rows) == 9
    for r in rows:
        recall, clean = float(r[5]), int(r[8].rstrip(" |"))
        assert recall >= 0.9, r
        assert clean == (1 if r[0] == "| drawdown velocity" else 0), r
