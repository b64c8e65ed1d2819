"""What fixing glibc's mmap threshold (`n2m.allocator`) does to a KorSTS training run's peak RSS and speed.

Each setting trains `recipes/korsts.yaml` on the full KorSTS training file for the first `--batches` batches,
in its own child process (so its peak RSS is its own), one after another on the same machine: glibc's dynamic
threshold (what a process gets by default), and the threshold fixed at each of `--thresholds-mb`. Writes
benchmarks/results/mmap_threshold.json and a Markdown table.

    python benchmarks/mmap_threshold.py     # about 3 min per setting on 2 cores
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _measure import machine, peak_rss_mb, run_child, today, train_timer_arg, write_results  # noqa: E402
from docs_pages import write_pages  # noqa: E402


def run_setting(threshold_mb: float, batches: int, out: str) -> dict:
    import n2m.cli

    n2m.cli.main(["fit", "--config", str(ROOT / "recipes/korsts.yaml"), "--mmap_threshold_mb", str(threshold_mb),
                  "--trainer.max_epochs", "1",
                  "--trainer.limit_train_batches", str(batches), "--trainer.limit_val_batches", "3",
                  "--trainer.num_sanity_val_steps", "0", "--test_after_fit", "false",
                  "--trainer.default_root_dir", out, "--trainer.enable_progress_bar", "false",
                  "--trainer.callbacks+", train_timer_arg(Path(out, "train_time.json"))])  # fmt: skip
    train_s = json.loads(Path(out, "train_time.json").read_text())["train_s"]
    return {"peak_rss_mb": peak_rss_mb(), "train_s": round(train_s, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--thresholds-mb", type=float, nargs="+", default=[1, 4])
    parser.add_argument("--out", default=str(ROOT / "runs/bench-mmap"))
    parser.add_argument("--child", help="a threshold in MB, or 'dynamic'")
    parser.add_argument("--config-json")
    args = parser.parse_args()
    if args.child:
        config = json.loads(args.config_json)
        threshold = 0.0 if args.child == "dynamic" else float(args.child)
        print(json.dumps(run_setting(threshold, config["batches"], f"{config['out']}/{args.child}")))
        return

    settings = ["dynamic"] + [f"{mb:g}" for mb in args.thresholds_mb]
    results: dict = {"machine": machine(), "date": today(), "batches": args.batches, "settings": {}}
    for setting in settings:
        print(f"running {setting} …", flush=True)
        results["settings"][setting] = run_child(__file__, setting, {"batches": args.batches, "out": args.out})
        print(json.dumps(results["settings"][setting]), flush=True)
    base = results["settings"]["dynamic"]
    lines = ["| mmap threshold | peak RSS MB | train s | RSS vs glibc's default | time vs glibc's default |",
             "|---|---|---|---|---|"]  # fmt: skip
    for setting, r in results["settings"].items():
        name = "glibc's dynamic default" if setting == "dynamic" else f"fixed at {setting} MB"
        lines.append(f"| {name} | {r['peak_rss_mb']} | {r['train_s']} | ×{r['peak_rss_mb'] / base['peak_rss_mb']:.2f} "
                     f"| ×{r['train_s'] / base['train_s']:.2f} |")  # fmt: skip
    write_results(ROOT / "benchmarks/results", "mmap_threshold", results, "\n".join(lines) + "\n")
    write_pages("mmap_threshold")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
