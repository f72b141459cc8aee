"""The environment record calls the tree dirty only for changed code, not for a run's own output."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from harness.environment import git_commit


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=test", "-c", "user.email=test@example.invalid",
                    "-c", "commit.gpgsign=false", *args], check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh repository with one committed file, untouched by the machine's git configuration."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    _git(tmp_path, "init", "-q")
    (tmp_path / "code.py").write_text("x = 1\n")
    _git(tmp_path, "add", "code.py")
    _git(tmp_path, "commit", "-q", "-m", "first")
    return tmp_path


def _clean(repo: Path) -> bool:
    commit = git_commit(repo)
    assert commit is not None and len(commit.split()[0]) == 12
    return not commit.endswith(" (uncommitted changes)")


def test_clean_checkout(repo: Path) -> None:
    assert _clean(repo)


def test_run_output_is_not_a_change(repo: Path) -> None:
    (repo / "results" / "20260101-000000-host").mkdir(parents=True)
    (repo / "results" / "20260101-000000-host" / "status.json").write_text("{}\n")
    (repo / "build").mkdir()
    (repo / "build" / "cache.bin").write_bytes(b"\0")
    assert _clean(repo)


def test_new_file_elsewhere_is_a_change(repo: Path) -> None:
    (repo / "new.py").write_text("y = 2\n")
    assert not _clean(repo)


def test_modified_file_is_a_change(repo: Path) -> None:
    (repo / "code.py").write_text("x = 2\n")
    assert not _clean(repo)


def test_not_a_repository(tmp_path: Path) -> None:
    assert git_commit(tmp_path / "nowhere") is None
