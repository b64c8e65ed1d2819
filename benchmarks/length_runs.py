"""How many length-sorted runs a CPU training step should cut a batch into (`n2m.core.batching.length_runs`).

N21's encoder reads a batch of texts in runs sorted by length, each padded only to its own longest text; N2M's
packed decoder runs attention that way over a batch's captions. More runs pad less but make more calls. This
times whole training steps (forward, backward, fused AdamW) on the first batches of real recipes, for a fixed
number of runs and for the rule N21 uses (`CPU_RUNS`, `RUN_OVERHEAD` in `n2m.shapes.n21.model`):

- korsts: KorSTS pairs, length-grouped batches (the recipe), both sides of each pair in one encoder call;
- korsts, random order: the same with `data.group_by_length: false`;
- ko-hate-speech: single comments in a random order (the recipe);
- ko-caption: the captioning recipe's batches through the packed decoder (`CPU_RUNS` in `n2m.shapes.n2m.packed`).

Each setting runs its steps in turns with the others, a few rounds, and keeps the median step; `real share` is
the batch's real tokens over those of one padded run. Writes benchmarks/results/length_runs.json.

    python benchmarks/length_runs.py     # about 10 minutes on 2 cores
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _measure import machine, today, write_results  # noqa: E402
from docs_pages import write_pages  # noqa: E402

STEPS, ROUNDS = 4, 3  # steps per setting per round; each round visits every setting once
OVERHEADS = (0.0, 0.01, 0.02, 0.03, 0.05, 0.1)  # the rule's per-run overhead: what it would choose at each


class Case(NamedTuple):
    """A recipe's first batches and what a step over one of them trains."""

    loss_of: Callable[[dict], torch.Tensor]
    module: torch.nn.Module
    batches: list
    real_share: float  # real tokens over those of each batch padded to its longest
    lengths: list[torch.Tensor]  # each batch's real lengths (N21: both sides' texts; captions: targets)


def recipe(name: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / "recipes" / f"{name}.yaml").read_text(encoding="utf-8"))


def n21_case(name: str, **data_overrides: Any) -> Case:
    from n2m.shapes.n21.data import TextDataModule
    from n2m.shapes.n21.task import SequenceTask

    config = recipe(name)
    data = TextDataModule(**{**config["data"], **data_overrides})
    data.setup("fit")
    torch.manual_seed(0)
    task = SequenceTask.from_data(data, **config.get("model", {}))
    batches = list(_first(data.train_dataloader(), STEPS * ROUNDS))
    lengths = [torch.cat([b[k]["attention_mask"].sum(1) for k in ("a", "b") if k in b]) for b in batches]
    return Case(task.loss, task, batches, _real_share(lengths), lengths)


def caption_case() -> Case:
    from n2m.shapes.n2m.data import Seq2SeqDataModule
    from n2m.shapes.n2m.examples import Seq2SeqColumns
    from n2m.shapes.n2m.images import ImageOptions
    from n2m.shapes.n2m.task import Seq2SeqTask

    config = recipe("ko-caption")
    settings = dict(config["data"])
    settings["columns"] = Seq2SeqColumns(**settings["columns"])
    settings["images"] = ImageOptions(**settings["images"])
    data = Seq2SeqDataModule(**settings)
    data.setup("fit")
    torch.manual_seed(0)
    task = Seq2SeqTask.from_data(data, **config["model"])
    batches = list(_first(data.train_dataloader(), STEPS * ROUNDS))
    lengths = [(b["labels"] != -100).sum(1) for b in batches]
    return Case(task.model.batch_loss, task, batches, _real_share(lengths), lengths)


def runs_by_overhead(lengths: list[torch.Tensor], most: int) -> dict[str, float]:
    """The mean number of runs N21's rule would cut these batches into, for a few values of its overhead."""
    from n2m.core.batching import length_runs

    return {str(c): round(statistics.mean(len(length_runs(x, most, c)) for x in lengths), 2)
            for c in OVERHEADS}  # fmt: skip


def _first(loader: Any, count: int) -> Any:
    for i, batch in enumerate(loader):
        if i == count:
            return
        yield batch


def _real_share(lengths: list[torch.Tensor]) -> float:
    """Real tokens over those of each batch's rows padded to its longest (one padded run)."""
    return round(sum(int(x.sum()) for x in lengths) / sum(len(x) * int(x.max()) for x in lengths), 3)


def time_settings(case: Case, settings: dict[str, Callable[[], Any]]) -> dict[str, float]:
    """Median milliseconds per training step under each setting (a function that sets it), taken in turns."""
    loss_of, module, batches = case.loss_of, case.module, case.batches
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-6, fused=True)
    module.train()

    def step(batch: dict) -> None:
        loss_of(batch).backward()
        optimizer.step()
        optimizer.zero_grad()

    step(batches[0])  # warm-up
    seconds: dict[str, list[float]] = {name: [] for name in settings}
    for round_ in range(ROUNDS):
        for name, apply in settings.items():
            apply()
            for batch in batches[round_ * STEPS : (round_ + 1) * STEPS]:
                start = time.perf_counter()
                step(batch)
                seconds[name].append(time.perf_counter() - start)
    return {name: round(statistics.median(s) * 1000, 1) for name, s in seconds.items()}


def main() -> None:
    import n2m.shapes.n2m.packed as packed
    import n2m.shapes.n21.model as n21

    counts = (1, 2, 3, 4, 6, 8)
    rule = (n21.CPU_RUNS, n21.RUN_OVERHEAD)

    def n21_runs(count: int | None) -> Callable[[], None]:
        def apply() -> None:  # a fixed count: no overhead, so every allowed run is cut where lengths differ
            n21.CPU_RUNS, n21.RUN_OVERHEAD = rule if count is None else (count, 0.0)

        return apply

    def packed_runs(count: int) -> Callable[[], None]:
        def apply() -> None:
            packed.CPU_RUNS = count

        return apply

    committed_packed = packed.CPU_RUNS
    results: dict[str, Any] = {"machine": machine(), "date": today(), "steps": STEPS * ROUNDS,
                               "rule": {"CPU_RUNS": rule[0], "RUN_OVERHEAD": rule[1]},
                               "packed_cpu_runs": committed_packed, "cases": {}}  # fmt: skip
    cases = {
        "korsts": lambda: n21_case("korsts"),
        "korsts, random order": lambda: n21_case("korsts", group_by_length=False),
        "ko-hate-speech": lambda: n21_case("ko-hate-speech"),
    }
    for name, build in cases.items():
        case = build()
        settings = {str(c): n21_runs(c) for c in counts} | {"rule": n21_runs(None)}
        results["cases"][name] = {"real_share": case.real_share, "ms_per_step": time_settings(case, settings),
                                  "runs_by_overhead": runs_by_overhead(case.lengths, rule[0])}  # fmt: skip
        n21_runs(None)()
        print(name, results["cases"][name], flush=True)
    case = caption_case()
    timed = time_settings(case, {str(c): packed_runs(c) for c in counts})
    packed.CPU_RUNS = committed_packed
    results["cases"]["ko-caption"] = {"real_share": case.real_share, "ms_per_step": timed}
    print("ko-caption", results["cases"]["ko-caption"], flush=True)

    header = ["case", "real share", *(f"{c} run{'s' if c > 1 else ''}" for c in counts), "N21's rule"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, c in results["cases"].items():
        cells = [name, c["real_share"], *(c["ms_per_step"].get(k, "—") for k in [*map(str, counts), "rule"])]
        lines.append("| " + " | ".join(str(x) for x in cells) + " |")
    write_results(ROOT / "benchmarks/results", "length_runs", results, "\n".join(lines) + "\n")
    write_pages("length_runs")


if __name__ == "__main__":
    main()
