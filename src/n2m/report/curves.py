"""Every shape's learning curves from the CSV log: training loss by step, each validation metric by epoch, the
epoch whose checkpoint was tested marked."""

from __future__ import annotations

from n2m.report.figures import Plot, Section, new_figure
from n2m.report.run import Run

MAX_LINES = 8  # more validation metrics than this (N2N's per-type F1s) would be unreadable on one axis


def curves_section(run: Run) -> Section:
    section = Section("Learning curves")
    steps = [(r["step"], r["train/loss"]) for r in run.metrics if "train/loss" in r and "step" in r]
    if steps:
        figure = new_figure(6.4, 3.6)
        ax = figure.add_subplot()
        ax.plot([s for s, _ in steps], [loss for _, loss in steps], color="tab:blue", linewidth=1.2)
        ax.set(xlabel="step", ylabel="training loss", title="Training loss by step")
        ax.grid(alpha=0.3)
        section.plots.append(Plot("train_loss", "Training loss by step", figure))
        section.numbers["train_loss"] = {"steps": [s for s, _ in steps], "loss": [v for _, v in steps]}

    by_epoch: dict[str, dict[int, float]] = {}
    for row in run.metrics:
        if "epoch" not in row:
            continue
        for key, value in row.items():
            if key.startswith("val/"):
                by_epoch.setdefault(key, {})[int(row["epoch"])] = value
    if not by_epoch:
        return section
    monitor = next(iter(run.results.get("best_val") or {}), None)
    best = run.best_epoch
    losses = [k for k in sorted(by_epoch) if k.endswith("loss")]
    scores = [k for k in sorted(by_epoch) if k not in losses]
    if len(scores) > MAX_LINES:  # keep the monitored metric and the first others
        scores = sorted({*([monitor] if monitor in scores else []), *scores[: MAX_LINES - 1]})
    groups = [g for g in (scores, losses) if g]
    figure = new_figure(6.4, 3.2 * len(groups))
    for i, keys in enumerate(groups):
        ax = figure.add_subplot(len(groups), 1, i + 1)
        for key in keys:
            epochs = sorted(by_epoch[key])
            ax.plot(epochs, [by_epoch[key][e] for e in epochs], marker="o", label=key)
            if key == monitor and best in by_epoch[key]:
                ax.plot(
                    [best],
                    [by_epoch[key][best]],
                    marker="*",
                    markersize=16,
                    color="gold",
                    markeredgecolor="black",
                    linestyle="none",
                    label=f"tested checkpoint (epoch {best})",
                )
        if best is not None:
            ax.axvline(best, color="gray", linestyle="--", linewidth=1)
        ax.set(xlabel="epoch", title="Validation " + ("scores" if keys is scores else "loss") + " by epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    section.plots.append(Plot("val_metrics", "Validation metrics by epoch", figure))
    section.numbers["val_metrics"] = {
        "best_epoch": best,
        "monitor": monitor,
        **{k: {str(e): v for e, v in by_epoch[k].items()} for k in by_epoch},
    }
    return section
