"""Turn a suite's runner entries and its sweep into result rows, and say how many calls and samples each row needs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.errors import UserError
from harness.jdks import tag as jdk_tag
from harness.model_spec import USER_KINDS
from harness.runners import RUNNERS
from harness.suite import RunnerChoice, RunSpec, Suite


def expand(
    entries: list[dict[str, Any]], sweep: dict[str, list[int]], run: RunSpec, model_kind: str,
    bad: Callable[[str, str, str], UserError],
) -> tuple[RunnerChoice, ...]:
    """The suite's [[runners]] entries, each checked against the registry, times the [sweep]'s batch and
    threads lists: one row per combination, named `<name>-b<batch>-t<threads>` for the swept settings.
    An entry that names its JDK and no `name` is called `<id>-jdk<version>` (`<id>-jdk-<home's folder>`)."""
    choices: list[RunnerChoice] = []
    seen: set[str] = set()
    for k, entry in enumerate(entries):
        rid = entry["id"]
        if rid not in RUNNERS:
            raise bad(f"runners[{k}].id", f"unknown runner '{rid}'", "use one of " + ", ".join(RUNNERS))
        reg = RUNNERS[rid]
        if model_kind not in reg.model_kinds and model_kind not in USER_KINDS:  # a user's: SKIPPED, saying why
            raise bad(f"runners[{k}].id", f"{rid} cannot run a {model_kind} model ({reg.method})",
                      "remove it from this suite; it runs model kinds " + ", ".join(reg.model_kinds))
        grad = entry.get("grad_mode", reg.grad_mode)
        if not reg.uses_torch and grad != reg.grad_mode:
            raise bad(f"runners[{k}].grad_mode", f"{rid} uses no libtorch", "leave grad_mode out for it")
        jdk = entry.get("jdk", "")
        if jdk and reg.toolchain != "java":
            raise bad(f"runners[{k}].jdk", f"{rid} is not a Java runner", "leave jdk out for it")
        family = entry.get("name", f"{rid}-{jdk_tag(jdk)}" if jdk else rid)
        batches = sweep.get("batch", [entry.get("batch", run.batch)])
        threads = sweep.get("threads", [entry.get("threads", run.threads)])
        for b in batches:
            for th in threads:
                name = family + (f"-b{b}" if "batch" in sweep else "") + (f"-t{th}" if "threads" in sweep else "")
                if name in seen:
                    raise bad(f"runners[{k}]", f"runner '{name}' listed twice",
                              "list each runner once, or give each variant its own `name`")
                seen.add(name)
                block = entry.get("block", reg.block if b == 1 else -(-reg.block // b))
                choices.append(RunnerChoice(rid, grad, block, name, b, th, family, jdk))
        if model_kind == "mlp_branch" and any(b != 1 for b in batches):
            raise bad(f"runners[{k}]", "an mlp_branch model decides its branch per call, not per sample",
                      "run it with batch 1 only")
    return tuple(choices)


def calls_for(run: RunSpec, choice: RunnerChoice) -> int:
    """Timed calls of one runner: the suite's count, or for a batch of b samples count // b (at least
    the suite's min_batched_calls), so every batch size costs about the same number of samples, in whole blocks."""
    if choice.batch == 1:
        return run.calls
    n = max(run.calls // choice.batch, run.min_batched_calls)
    return -(-n // choice.block) * choice.block


def samples_needed(suite_run: RunSpec, runners: tuple[RunnerChoice, ...]) -> int:
    """Input samples for every timed call to see its own batch (the default input count)."""
    return max((calls_for(suite_run, c) * c.batch for c in runners), default=suite_run.calls)


def check_blocks(suite: Suite) -> None:
    """Each runner times whole blocks, so its call count must divide evenly."""
    for c in suite.runners:
        if RUNNERS[c.id].cannot_run(suite.model):
            continue  # SKIPPED with the reason: it makes no calls
        if calls_for(suite.run, c) % c.block:
            raise UserError(
                f"{suite.source}: runners.{c.name}.block: {suite.run.calls} calls do not split into blocks of "
                f"{c.block}: choose a call count that is a multiple of {c.block}"
            )
