"""Where things live: the repository's own folders, resolved once."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUITES_DIR = ROOT / "harness" / "suites"
BUILD_DIR = ROOT / "build"
RESULTS_DIR = ROOT / "results"
