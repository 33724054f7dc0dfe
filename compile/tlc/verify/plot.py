"""A picture of a verification: per-class recall of reference vs bundle, and the |Δprob| spread."""

from __future__ import annotations

from pathlib import Path

from .runner import VerifyResult


def plot_verification(result: VerifyResult, path: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    c = result.comparison
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    names = list(result.class_names)
    x = np.arange(len(names))
    ref = [r or 0.0 for r in (c.recall_reference or [])]
    cand = [r or 0.0 for r in (c.recall_candidate or [])]
    ax1.bar(x - 0.2, ref, 0.4, label="reference (PyTorch)")
    ax1.bar(x + 0.2, cand, 0.4, label=f"bundle ({result.runner['backend']}, {result.runner['precision']})")
    ax1.set_xticks(x, names, rotation=30, ha="right")
    ax1.set_ylim(0, 1.05)
    ax1.set_ylabel("recall")
    ax1.set_title(f"per-class recall (agreement {100 * c.agreement:.2f}%)")
    ax1.legend(loc="lower right", fontsize=8)
    checks = ", ".join(f"{ch.name} {'ok' if ch.passed else 'FAIL'}" for ch in result.checks)
    ax2.axis("off")
    ax2.text(0, 1, "\n".join([
        f"images: {c.n} ({result.split})",
        f"balanced accuracy: {c.balanced_accuracy_reference:.4f} → {c.balanced_accuracy_candidate:.4f}",
        f"drop 95% CI: {c.balanced_accuracy_drop_ci95}",
        f"max |Δprob|: {c.max_abs_prob_delta:.2e}   mean: {c.mean_abs_prob_delta:.2e}",
        f"flip rate: {100 * c.flip_rate:.2f}%",
        "", checks, "", "PASSED" if result.passed else "FAILED"]), va="top", family="monospace", fontsize=9)
    fig.suptitle(f"tlc verify — {Path(result.bundle).name}")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
