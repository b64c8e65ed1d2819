"""What fixing glibc's mmap threshold (`n2m.allocator`) does to a training run's peak RSS and speed.

Each setting trains `--recipe` (default recipes/korsts.yaml) on its full training file for the first `--batches`
batches, in its own child process (so its peak RSS is its own), one after another on the same machine: glibc's
dynamic threshold (what a process gets by default), and the threshold fixed at each of `--thresholds-mb`; with
`--repeats`, every setting runs that many times in turn and the median run is kept. Writes
benchmarks/results/mmap_threshold.json (another recipe: mmap_threshold.<recipe>.json) and a Markdown table.

`--generation RUN_DIR`: what the threshold does to generation instead. The checkpoint a finished
`recipes/ko-caption.yaml` run chose decodes the recipe's test split (beam search, as `n2m fit` scores it) in a
child process per setting: glibc's dynamic threshold; the threshold fixed at 4 MB for the whole process
(`MALLOC_MMAP_THRESHOLD_`, as `n2m fit` left it before generation lifted it); and `n2m.allocator.fix_mmap_threshold`
at 4 MB, as `n2m fit` sets it now (lifted while a model generates). Each setting runs `--repeats` times, in turn.
Writes benchmarks/results/mmap_threshold.generation.json.

    python benchmarks/mmap_threshold.py     # about 3 min per setting on 2 cores
    python benchmarks/mmap_threshold.py --recipe recipes/ko-caption.yaml --batches 120 --thresholds-mb 4 16 --repeats 3
    python benchmarks/mmap_threshold.py --generation runs/ko-caption --repeats 3   # about 30 s per run
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _measure import machine, peak_rss_mb, repo_path, run_child, today, train_timer_arg, write_results  # noqa: E402
from docs_pages import write_pages  # noqa: E402


def run_setting(recipe: str, threshold_mb: float, batches: int, out: str) -> dict:
    import n2m.cli

    n2m.cli.main(["fit", "--config", recipe, "--mmap_threshold_mb", str(threshold_mb),
                  "--trainer.max_epochs", "1",
                  "--trainer.limit_train_batches", str(batches), "--trainer.limit_val_batches", "3",
                  "--trainer.num_sanity_val_steps", "0", "--test_after_fit", "false",
                  "--trainer.default_root_dir", out, "--trainer.enable_progress_bar", "false",
                  "--trainer.callbacks+", train_timer_arg(Path(out, "train_time.json"))])  # fmt: skip
    train_s = json.loads(Path(out, "train_time.json").read_text())["train_s"]
    return {"peak_rss_mb": peak_rss_mb(), "train_s": round(train_s, 1)}


def in_turn(settings: Sequence[str], repeats: int, key: str, run: Callable[[str], dict]) -> dict[str, dict]:
    """`run(setting)` for every setting, `repeats` times in turn (so a slow spell of the shared machine falls on
    every setting); per setting, the median run by `key` (the lower middle of an even number) and every run's
    `key`."""
    runs: dict[str, list[dict]] = {s: [] for s in settings}
    for _ in range(repeats):
        for setting in settings:
            print(f"running {setting} …", flush=True)
            runs[setting].append(run(setting))
            print(json.dumps(runs[setting][-1]), flush=True)
    middle = {s: sorted(rs, key=lambda r: r[key])[(len(rs) - 1) // 2] for s, rs in runs.items()}
    return {s: {**middle[s], f"{key}_runs": [r[key] for r in rs]} for s, rs in runs.items()}


GENERATION_SETTINGS = ("dynamic", "fixed", "lifted")
FOUR_MB = 4 << 20


def run_generation(setting: str, run_dir: str, out: str) -> dict:
    """Decode the test split with the run's chosen checkpoint; `fixed` is set by the parent's environment."""
    import lightning as L
    from caption_vs_hf import recipe_data

    from n2m.allocator import fix_mmap_threshold
    from n2m.core.export import chosen_checkpoint
    from n2m.shapes.n2m.task import Seq2SeqTask

    if setting == "lifted":
        fix_mmap_threshold(FOUR_MB)
    task = Seq2SeqTask.load_from_checkpoint(chosen_checkpoint(run_dir), map_location="cpu", weights_only=True)
    data = recipe_data(ROOT / "recipes/ko-caption.yaml", quick=False)
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_checkpointing=False, accelerator="cpu",
                        default_root_dir=out)  # fmt: skip
    data.setup("test")  # images decoded before the clock starts
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start = time.perf_counter()
    scores = trainer.test(task, datamodule=data, verbose=False)[0]
    seconds = time.perf_counter() - start
    return {
        "test_s": round(seconds, 1),
        "tokens": task.generated_tokens,
        "tokens_per_s": round(task.generated_tokens / seconds, 1),
        "page_faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults,
        "cider": round(scores["test/cider"], 2),
        "peak_rss_mb": peak_rss_mb(),
    }


def generation_main(run_dir: str, repeats: int, out: str) -> None:
    results: dict = {"machine": machine(), "date": today(), "run_dir": run_dir, "repeats": repeats, "settings": {}}

    def run(setting: str) -> dict:
        env = {"MALLOC_MMAP_THRESHOLD_": str(FOUR_MB)} if setting == "fixed" else {}
        config = {"run_dir": run_dir, "out": f"{out}/{setting}"}
        return run_child(__file__, f"generation-{setting}", config, env)

    results["settings"] = in_turn(GENERATION_SETTINGS, repeats, "tokens_per_s", run)
    base = results["settings"]["dynamic"]
    lines = ["| mmap threshold | tokens/s | × glibc's | page faults | × glibc's | test CIDEr-D |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for setting, r in results["settings"].items():
        speed, faults = r["tokens_per_s"] / base["tokens_per_s"], r["page_faults"] / base["page_faults"]
        lines.append(f"| {setting} | {r['tokens_per_s']} | ×{speed:.2f} | {r['page_faults']} | ×{faults:.2f} "
                     f"| {r['cider']} |")  # fmt: skip
    write_results(ROOT / "benchmarks/results", "mmap_threshold.generation", results, "\n".join(lines) + "\n")
    write_pages("mmap_threshold")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default=str(ROOT / "recipes/korsts.yaml"))
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--thresholds-mb", type=float, nargs="+", default=[1, 4])
    parser.add_argument("--out", default=str(ROOT / "runs/bench-mmap"))
    parser.add_argument("--generation", metavar="RUN_DIR", help="a finished ko-caption run: measure generation")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each setting, in turn (the median is kept)")
    parser.add_argument("--child", help="a threshold in MB, 'dynamic', or generation-SETTING")
    parser.add_argument("--config-json")
    args = parser.parse_args()
    if args.child and args.child.startswith("generation-"):
        config = json.loads(args.config_json)
        setting = args.child.removeprefix("generation-")
        print(json.dumps(run_generation(setting, config["run_dir"], config["out"])))
        return
    if args.generation:
        generation_main(args.generation, args.repeats, f"{args.out}-generation")
        return
    if args.child:
        config = json.loads(args.config_json)
        threshold = 0.0 if args.child == "dynamic" else float(args.child)
        print(json.dumps(run_setting(config["recipe"], threshold, config["batches"], f"{config['out']}/{args.child}")))
        return

    settings = ["dynamic"] + [f"{mb:g}" for mb in args.thresholds_mb]
    recipe = Path(args.recipe)
    results: dict = {"machine": machine(), "date": today(), "recipe": repo_path(recipe), "batches": args.batches,
                     "repeats": args.repeats, "settings": {}}  # fmt: skip
    config = {"recipe": str(recipe), "batches": args.batches, "out": args.out}
    results["settings"] = in_turn(settings, args.repeats, "train_s", lambda s: run_child(__file__, s, config))
    base = results["settings"]["dynamic"]
    lines = ["| mmap threshold | peak RSS MB | train s | RSS vs glibc's default | time vs glibc's default |",
             "|---|---|---|---|---|"]  # fmt: skip
    for setting, r in results["settings"].items():
        name = "glibc's dynamic default" if setting == "dynamic" else f"fixed at {setting} MB"
        lines.append(f"| {name} | {r['peak_rss_mb']} | {r['train_s']} | ×{r['peak_rss_mb'] / base['peak_rss_mb']:.2f} "
                     f"| ×{r['train_s'] / base['train_s']:.2f} |")  # fmt: skip
    name = "mmap_threshold" if recipe.stem == "korsts" else f"mmap_threshold.{recipe.stem}"
    write_results(ROOT / "benchmarks/results", name, results, "\n".join(lines) + "\n")
    write_pages("mmap_threshold")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
