"""Verdicts on a suite's claims: each `[[claims]]` table of the suite checked against one run's rows.

The claims are data (the text, its source and figure, a check from harness/predicates.py); the rule
that decides every comparison is harness/rule.py's. A claim whose rows did not run or failed is "not
testable here", with the reason; a claim on one setting in a run that sweeps settings is too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from harness.predicates import SWEEP_CHECKS, Finding, NotTestable, Rows, evaluate
from harness.rule import RULE, UNTESTABLE

__all__ = ["RULE", "verdicts"]


def _swept(df: pd.DataFrame) -> bool:
    """Rows that are sweep variants (a batch or thread suffix): claims on one setting do not apply."""
    if "family" not in df.columns:
        return False
    return bool((df["family"].fillna(df["runner"]) != df["runner"]).any())


def verdicts(df: pd.DataFrame, repeat_medians: Mapping[str, Sequence[float]] | None,
             claims: Sequence[Mapping[str, Any]], uses_torch: Mapping[str, bool]) -> list[dict[str, str]]:
    """One row {claim, source, ours, verdict, why} per claim, in the suite's order.

    `repeat_medians` (summary.json's, runner name → µs per repeat) allows paired comparisons; `uses_torch`
    (runner id → whether it loads libtorch) comes from the registry entries the run recorded.
    """
    rows = Rows(df, repeat_medians or {}, uses_torch)
    swept = _swept(df)
    out = []
    for claim in claims:
        if swept and claim["check"] not in SWEEP_CHECKS:
            found = Finding(UNTESTABLE, "–", "this run sweeps batch sizes or threads; the claim compares one setting.")
        else:
            try:
                found = evaluate(rows, claim)
            except NotTestable as exc:
                found = Finding(UNTESTABLE, str(exc), "a row the claim needs did not run or did not finish.")
        out.append({"claim": claim["text"], "source": claim["source"], "ours": found.ours, "verdict": found.verdict,
                    "why": found.why})
    return out
