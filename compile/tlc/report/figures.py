"""The report's pictures as ``data:`` URIs (base64 PNG), so that report.html needs nothing beside it."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import numpy as np

from ..verify.compare import per_class_recall, softmax
from .stats import roc_curves, wilson

MODELS = ("reference (PyTorch)", "artifact")


def png_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _figure_uri(fig) -> str:
    plt = _pyplot()
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return png_uri(buffer.getvalue())


def confusion_pair(labels: np.ndarray, preds: Sequence[np.ndarray], class_names: Sequence[str],
                   titles: Sequence[str] = MODELS) -> str:
    """Confusion matrices (rows: true, columns: predicted) side by side, one per prediction vector."""
    from ..train.metrics import confusion_matrix

    k = len(class_names)
    plt = _pyplot()
    side = min(3 + 0.35 * k, 8)
    fig, axes = plt.subplots(1, len(preds), figsize=(side * len(preds), side))
    for ax, pred, title in zip(np.atleast_1d(axes), preds, titles, strict=True):
        matrix = np.array(confusion_matrix(labels, pred, k))
        ax.imshow(matrix, cmap="Blues")
        for (i, j), count in np.ndenumerate(matrix):
            ax.text(j, i, str(count), ha="center", va="center", fontsize=8,
                    color="white" if count > matrix.max() / 2 else "black")
        ax.set_xticks(range(k), class_names, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(k), class_names, fontsize=8)
        ax.set(xlabel="predicted", ylabel="true", title=title)
    return _figure_uri(fig)


def roc_figure(labels: np.ndarray, logits: Sequence[np.ndarray], class_names: Sequence[str],
               titles: Sequence[str] = MODELS) -> str | None:
    """ROC curves with AUC, one panel per model; None when no class has both outcomes in ``labels``."""
    curves = [roc_curves(labels, softmax(x), tuple(class_names)) for x in logits]
    if not any(curves):
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(curves), figsize=(4.5 * len(curves), 4.2))
    for ax, panel, title in zip(np.atleast_1d(axes), curves, titles, strict=True):
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
        for name, fpr, tpr, auc in panel:
            ax.plot(fpr, tpr, label=f"{name}: AUC {auc:.3f}")
        ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="false positive rate", ylabel="true positive rate",
               title=title + ("" if len(class_names) == 2 else " (one-vs-rest)"))
        ax.legend(loc="lower right", fontsize=7)
    return _figure_uri(fig)


def recall_figure(labels: np.ndarray, preds: Sequence[np.ndarray], class_names: Sequence[str],
                  titles: Sequence[str] = MODELS) -> str:
    """Per-class recall of each model with Wilson 95 % intervals as error bars."""
    plt = _pyplot()
    k = len(class_names)
    counts = np.bincount(labels, minlength=k)
    fig, ax = plt.subplots(figsize=(min(4 + 0.6 * k, 12), 3.6))
    width = 0.8 / len(preds)
    for m, (pred, title) in enumerate(zip(preds, titles, strict=True)):
        recall = np.array([r if r is not None else np.nan for r in per_class_recall(labels, pred, k)])
        hits = np.bincount(labels, weights=(pred == labels), minlength=k).astype(int)
        bounds = [wilson(int(h), int(n)) or (np.nan, np.nan) for h, n in zip(hits, counts, strict=True)]
        err = np.abs(np.array(bounds).T - recall)
        x = np.arange(k) + (m - (len(preds) - 1) / 2) * width
        ax.bar(x, recall, width, yerr=err, capsize=3, label=title)
    ax.set_xticks(range(k), class_names, rotation=30, ha="right", fontsize=8)
    ax.set(ylim=(0, 1.05), ylabel="recall", title="per-class recall, 95% Wilson intervals")
    ax.legend(loc="lower right", fontsize=8)
    return _figure_uri(fig)


def thumbnail(image: np.ndarray, side: int = 96) -> str:
    """One graph-dtype H×W×C input as a PNG ``side`` pixels across (grey or RGB, scaled to 8 bits)."""
    from PIL import Image

    pixels = np.asarray(image, dtype=np.float64)
    top = 255.0 if image.dtype == np.uint8 else max(float(pixels.max()), 1.0)
    pixels = np.clip(np.rint(pixels / top * 255), 0, 255).astype(np.uint8)
    pixels = pixels[..., 0] if pixels.shape[-1] == 1 else pixels[..., :3]
    picture = Image.fromarray(pixels)
    scale = side / max(picture.size)
    picture = picture.resize((max(1, round(picture.width * scale)), max(1, round(picture.height * scale))),
                             Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return png_uri(buffer.getvalue())
