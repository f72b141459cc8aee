"""The orchestrator: suite → model → inputs → render → build → run → verify → stats → report."""
