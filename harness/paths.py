"""Where things live: the repository's own folders, resolved once."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUITES_DIR = ROOT / "harness" / "suites"
EXAMPLES_DIR = ROOT / "examples"  # bundled user-model examples: factories and their suites
BUILD_DIR = ROOT / "build"
RESULTS_DIR = ROOT / "results"
