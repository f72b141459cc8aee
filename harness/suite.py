"""What a suite is once loaded and checked: the frozen records every later stage reads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.model_spec import ModelSpec
from harness.verify import ATOL, RTOL

MIN_BATCHED_CALLS = 100  # default of [run] min_batched_calls
# default of [run] warmup_s: the warm-up's minimum time. A count alone is ~0.1 ms of warm-up on a sub-µs path,
# which ends before the JVM's C2 has compiled the call: java-aoti-minimal-ffm's processes then measured
# 0.085-0.22 µs, 0.06 µs once compiled, and a program and its row landed in different JIT states
WARMUP_S = 0.5


@dataclass(frozen=True)
class InputSpec:
    count: int
    distribution: str = "uniform"
    low: float = -10.0
    high: float = 10.0
    seed: int = 1
    fixed_count: bool = False  # the suite gave `count` (calls then wrap over the samples); else it follows the calls


@dataclass(frozen=True)
class RunSpec:
    calls: int = 100_000
    warmup_calls: int = 1000
    warmup_s: float = WARMUP_S  # after warmup_calls, the warm-up goes on until this many seconds have passed
    repeats: int = 5
    threads: int = 1
    interop_threads: int = 1
    timeout_s: float | None = None  # None: derived from the call count
    batch: int = 1  # samples per call, unless a runner entry or the sweep says otherwise
    min_batched_calls: int = MIN_BATCHED_CALLS  # timed calls of a batched runner, however large its batch
    instructions: bool = False  # also count instructions per call under valgrind (harness/instructions.py)
    programs: bool = True  # standalone programs for the verified rows, run beside them (harness/programs.py)
    decomposition: bool = False  # split the fastest paths into crossing, framework, operators, arithmetic


@dataclass(frozen=True)
class LoadSpec:
    """A suite's [load] table (harness/load.py): many callers of the fastest paths, and the server's search.

    `callers` () means 1, 2, … up to the machine's cores; `runners` are rows run beside each language's fastest.
    `offline_batches` are the batch sizes each path's row is run at for the offline scenario (samples per second);
    at the row's own batch the run's own figure is taken (harness/load.py, own_rows), not run twice.
    """

    runners: tuple[str, ...] = ()
    callers: tuple[int, ...] = ()
    closed_s: float = 2.0  # each multi-caller measurement (threads or processes), calling as fast as they can
    duration_s: float = 10.0  # the server's final run at the peak rate found (LoadGen's min_duration)
    search_s: float = 2.0  # each rate the search tries before that
    # rates tried by the search, at most: 5 halvings of [0, 1.2 × capacity] leave ~4 % of the 1-caller capacity,
    # inside the run-to-run spread of the peak on a VM (a sixth try cost a process start-up per path)
    search_steps: int = 5
    bound_ms: float = 1.0  # a rate passes when the p99 latency from the scheduled arrival is within this
    server_callers: int = 1  # caller threads sharing the arrivals in the server scenario
    min_queries: int = 1000  # fewer queries in the final run make its result INVALID
    seed: int = 1
    offline_batches: tuple[int, ...] = (1, 16, 256)  # the offline scenario's batch sweep; () runs none


@dataclass(frozen=True)
class RunnerChoice:
    """One row of the results: a registered runner (`id`) with its settings, under a unique `name`.

    `family` is the name before any sweep suffix (`cpp-api` for `cpp-api-b64-t2`), for grouping rows.
    `jdk` is what the entry's `jdk` says (a feature version or a JDK's home, harness/jdks.py), "" for the
    JDK on PATH.
    """

    id: str
    grad_mode: str
    block: int
    name: str
    batch: int = 1
    threads: int = 1
    family: str = ""
    jdk: str = ""


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    source: str  # the file it came from, for messages and the report
    model: ModelSpec
    inputs: InputSpec
    run: RunSpec
    runners: tuple[RunnerChoice, ...]
    claims: tuple[dict[str, Any], ...] = ()  # the suite's [[claims]] (harness/claims.py), judged in the report
    tolerance: tuple[float, float] = (ATOL, RTOL)  # (atol, rtol) where a runner has none ([verify])
    load: LoadSpec | None = None  # the suite's [load] table, or `invoke load`'s defaults


@dataclass(frozen=True)
class Collection:
    """Several suites measured one after another into one run folder (`invoke all --suite recipes`)."""

    name: str
    description: str
    source: str
    parts: tuple[Suite, ...]
