"""The JDKs on this machine, and the one a suite's runner entry names (`jdk = "25"` or a JDK's home).

A Java runner built and run with a named JDK gets Maven with JAVA_HOME set to it and that JDK's `java`;
the suite's value is checked against a pattern before this module sees it, and no value reaches a shell
(every subprocess takes an argument list).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

JVM_DIR = Path("/usr/lib/jvm")  # where Debian's and Adoptium's packages put their JDKs
OLDEST = 17  # the runners' sources (records, pattern matching) and their pom's release 17 need it
# a suite's `jdk`: a feature version ("17", "25") or the absolute path of a JDK's home
SPEC_PATTERN = r"^([1-9][0-9]{0,2}|/[A-Za-z0-9._+/-]{1,255})$"
_VERSION_LINE = re.compile(r'version "([^"]+)"')


class JdkNotFound(Exception):
    """The named JDK is not on this machine, or is not a usable JDK: one line naming it and the fix."""


@dataclass(frozen=True)
class Jdk:
    """One installed JDK: its home, its version (JAVA_VERSION of its `release` file) and its vendor."""

    home: Path
    version: str  # e.g. "25.0.3"
    runtime_version: str  # e.g. "25.0.3+9-LTS"
    vendor: str  # e.g. "Eclipse Adoptium"

    @property
    def feature(self) -> int:
        """The feature release (25 for 25.0.3, 8 for 1.8.0_402)."""
        match = re.match(r"(?:1\.)?(\d+)", self.version)
        return int(match.group(1)) if match else 0

    @property
    def java(self) -> Path:
        return self.home / "bin" / "java"

    @property
    def javac(self) -> Path:
        return self.home / "bin" / "javac"

    def describe(self) -> str:
        return f"JDK {self.runtime_version} ({self.vendor}) at {self.home}"


def is_version(spec: str) -> bool:
    return spec.isdigit()


def tag(spec: str) -> str:
    """The row-name suffix for a JDK spec: `jdk25`, or `jdk-` and the home's folder name for a path."""
    if is_version(spec):
        return f"jdk{spec}"
    return "jdk-" + re.sub(r"[^A-Za-z0-9_-]", "-", Path(spec).name or "root")


def _release(home: Path) -> dict[str, str]:
    try:
        text = (home / "release").read_text(errors="replace")
    except OSError:
        return {}
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line)
    return {k.strip(): v.strip().strip('"') for k, v in pairs}


def _version_of(java: Path) -> str | None:
    """`java -version`'s version, for a JDK without a `release` file."""
    try:
        proc = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = _VERSION_LINE.search(proc.stderr + proc.stdout)
    return match.group(1) if match else None


def read(home: Path) -> Jdk:
    """The JDK at `home`; JdkNotFound when it is not a JDK (no bin/java, no bin/javac, no version)."""
    if not home.is_dir():
        raise JdkNotFound(f"JDK home {home} does not exist: give the home of an installed JDK "
                          f"(a folder with bin/java and bin/javac, e.g. under {JVM_DIR})")
    for tool in ("java", "javac"):
        if not (home / "bin" / tool).is_file():
            what = "a JRE, not a JDK" if tool == "javac" and (home / "bin" / "java").is_file() else "not a JDK"
            raise JdkNotFound(f"{home} has no bin/{tool} ({what}): give the home of a full JDK")
    release = _release(home)
    version = release.get("JAVA_VERSION") or _version_of(home / "bin" / "java")
    if not version:
        raise JdkNotFound(f"{home}/bin/java does not tell its version: check that JDK (run {home}/bin/java -version)")
    return Jdk(home=home, version=version, runtime_version=release.get("JAVA_RUNTIME_VERSION") or version,
               vendor=release.get("IMPLEMENTOR") or "unknown vendor")


def _alternatives() -> list[Path]:
    """JDK homes that `update-alternatives --list` knows, from its java and javac entries."""
    tool = shutil.which("update-alternatives")
    if tool is None:
        return []
    homes = []
    for name in ("javac", "java"):
        try:
            proc = subprocess.run([tool, "--list", name], capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired):
            continue
        homes += [Path(line.strip()).resolve().parent.parent for line in proc.stdout.splitlines() if line.strip()]
    return homes


def installed() -> list[Jdk]:
    """Every JDK found here (update-alternatives, then the folders of /usr/lib/jvm), newest first, each home once."""
    candidates = _alternatives() + (sorted(p for p in JVM_DIR.iterdir() if p.is_dir()) if JVM_DIR.is_dir() else [])
    found: dict[Path, Jdk] = {}
    for home in candidates:
        real = home.resolve()
        if real in found:
            continue
        try:
            found[real] = read(real)
        except JdkNotFound:
            continue
    return sorted(found.values(), key=lambda j: (-j.feature, j.version, str(j.home)))


def _install_hint(feature: str) -> str:
    return (f"install a JDK {feature} (apt-get install openjdk-{feature}-jdk-headless where the distribution has "
            f"it, else Adoptium's temurin-{feature}-jdk package), or give its home as jdk = \"/path/to/jdk\"")


def find(spec: str) -> Jdk:
    """The JDK a suite names: a feature version among the installed ones (the newest of that feature), or a home.

    JdkNotFound, one line naming the JDK and how to install it, when there is none or it is older than OLDEST.
    """
    if not re.fullmatch(SPEC_PATTERN, spec):
        raise JdkNotFound(f"jdk '{spec}' is neither a feature version (e.g. 25) nor an absolute path: write one")
    if is_version(spec):
        jdks = installed()
        match = [j for j in jdks if j.feature == int(spec)]
        if not match:
            have = ", ".join(f"{j.feature} at {j.home}" for j in jdks) or "none"
            raise JdkNotFound(f"JDK {spec} not found on this machine (JDKs found: {have}): {_install_hint(spec)}")
        jdk = match[0]
    else:
        jdk = read(Path(spec))
    if jdk.feature < OLDEST:
        raise JdkNotFound(f"{jdk.describe()} is older than JDK {OLDEST}, the oldest the Java runners compile for: "
                          f"{_install_hint(str(OLDEST))}")
    return jdk


def at_least(feature: int, why: str) -> Jdk:
    """The JDK a runner that needs `feature` or newer runs on when its entry names none: the one on PATH, as for
    every other runner, if it is new enough, else the newest installed. JdkNotFound, in one line saying `why` it
    needs that JDK and how to install one, when there is none."""
    path = on_path()
    if path is not None and path.feature >= feature:
        return path
    jdks = installed()
    if jdks and jdks[0].feature >= feature:
        return jdks[0]
    have = ", ".join(f"{j.feature} at {j.home}" for j in jdks) or "none"
    raise JdkNotFound(f"JDK {feature} or newer not found on this machine (JDKs found: {have}): {why}; "
                      f"{_install_hint('25')}")


def on_path() -> Jdk | None:
    """The JDK whose javac is first on PATH (what a runner without `jdk` is built and run with), if any."""
    javac = shutil.which("javac")
    if javac is None:
        return None
    try:
        return read(Path(javac).resolve().parent.parent)
    except JdkNotFound:
        return None
