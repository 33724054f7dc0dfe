"""How far a target dataset is from a source run's training data, in the source model's feature space.

The source run's best checkpoint embeds a sample of its own training images and of the target's training
images (pooled penultimate features, ``Classifier.forward_features``; both at the source run's image size,
each through its own preprocessing as fine-tuning would feed it: the target's value range with the source
run's mean/std). A Gaussian is fitted to each set and the Fréchet distance between them is

    FD² = ‖μ_s − μ_t‖² + Tr(Σ_s + Σ_t − 2 (Σ_s^½ Σ_t Σ_s^½)^½)

(the FID formula; the matrix square roots come from symmetric eigen-decompositions, negative eigenvalues
of rank-deficient sample covariances clipped to 0). The reported ``distance`` is FD² / Tr(Σ_s): the
source's own feature spread as the unit, so values compare across architectures (whose features have
different scales and widths). 0 means the same feature distribution (two samples of one distribution
give a small positive value); a smaller distance is a closer source.

A second measure is recorded beside it: the proxy A-distance (``proxy_a_distance``; Ben-David et al.,
"Analysis of representations for domain adaptation", 2007, and "A theory of learning from different
domains", 2010): 2 (1 − 2 err) of a linear classifier separating source from target features, 0 (cannot
be told apart) to 2 (separate perfectly). Unlike the Fréchet distance it assumes no Gaussian shape and
does not depend on the source's feature scale, but it saturates at 2 for any clearly different domain.

None of the three is a transferability guarantee. On PneumoniaMNIST with 200 labels and eight
ResNet-18 sources (benchmarks/README.md, "Source distance"), the two distances had the wrong sign
against fine-tuned AUC on held-out target images: they measure how the *data* differ under the source
model, not how useful its features are for the target's labels. So a third number is recorded beside
them: ``logme`` (``tlc.train.transferability``), the LogME evidence of the target's labels given the
same target features, higher = a better source; it needs the target's labels, which fine-tuning has
anyway. It ranked those sources (Spearman +0.62, and three of known usefulness in their order); no
measure was reliable on the dataset's shifted published test split.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..data import Dataset, DataWarning, load_dataset
from ..errors import TlcError
from ..models.checkpoint import load_run_model
from ..models.deploy import DeployModel
from ..models.ood import features_of
from ..runs import RunInfo
from .rundir import make_preprocessing
from .transferability import logme

MAX_IMAGES = 300  # per side: the covariance of a few hundred features is stable enough to rank sources
BATCH = 128


@dataclass(frozen=True)
class SourceDistance:
    """``distance`` = ``frechet`` / ``source_trace`` (see the module docstring), over ``n_source`` and
    ``n_target`` training images of the source run ``source``; ``pad`` the proxy A-distance of the same
    features and ``logme`` the LogME score of the target's labels on its features (higher = better
    source; both None in run.json files written before they existed)."""

    distance: float
    frechet: float
    source_trace: float
    n_source: int
    n_target: int
    source: str
    pad: float | None = None
    logme: float | None = None

    def describe(self) -> str:
        pad = "" if self.pad is None else f"; proxy A-distance {self.pad:.2f} of 2"
        fit = "" if self.logme is None else (f"; LogME {self.logme:.3f} (how well its features explain the "
                                             "target's labels: higher = better source)")
        return (f"source distance {self.distance:.3f} (Fréchet distance of {self.n_target} target vs "
                f"{self.n_source} source training images in {self.source}'s feature space, ÷ source spread)"
                + pad + fit)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def gaussian_frechet(mu_a: np.ndarray, cov_a: np.ndarray, mu_b: np.ndarray, cov_b: np.ndarray) -> float:
    """FD² between N(mu_a, cov_a) and N(mu_b, cov_b) (module docstring), ≥ 0."""
    vals, vecs = np.linalg.eigh(cov_a)
    root_a = (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T
    middle = root_a @ cov_b @ root_a
    cross = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    value = float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * cross)
    return max(value, 0.0)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """FD² between Gaussians fitted (mean, sample covariance) to the rows of ``a`` and of ``b`` (N×F)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(f"need two N×F feature sets with N ≥ 2 and the same F, got {a.shape} and {b.shape}")
    return gaussian_frechet(a.mean(0), np.cov(a, rowvar=False).reshape(a.shape[1], -1),
                            b.mean(0), np.cov(b, rowvar=False).reshape(b.shape[1], -1))


def normalised_frechet(source: np.ndarray, target: np.ndarray) -> tuple[float, float, float]:
    """(FD² / Tr(Σ_source), FD², Tr(Σ_source)) of two feature sets."""
    fd = frechet_distance(source, target)
    trace = float(np.trace(np.cov(np.asarray(source, np.float64), rowvar=False).reshape(source.shape[1], -1)))
    if trace <= 0:
        raise ValueError("the source features do not vary (every image gives the same vector)")
    return fd / trace, fd, trace


def proxy_a_distance(source: np.ndarray, target: np.ndarray, seed: int = 0) -> float:
    """Proxy A-distance (Ben-David et al. 2007/2010) of two feature sets: 2 (1 − 2 err), where err is the
    held-out error of a linear classifier (L2 logistic regression on standardised features, trained on a
    random half of each set, tested on the other half) told to separate source from target. Clipped to
    [0, 2]: 0 when the sets cannot be told apart (err 0.5), 2 when they separate perfectly."""
    from sklearn.linear_model import LogisticRegression

    a, b = np.asarray(source, np.float64), np.asarray(target, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 4:
        raise ValueError(f"need two N×F feature sets with N ≥ 4 and the same F, got {a.shape} and {b.shape}")
    n = min(len(a), len(b))  # balanced classes, so chance error is 0.5
    rng = np.random.default_rng(seed)
    a, b = a[rng.permutation(len(a))[:n]], b[rng.permutation(len(b))[:n]]
    x, y = np.concatenate([a, b]), np.repeat([0, 1], n)
    fit = np.zeros(2 * n, bool)
    fit[:n // 2] = fit[n:n + n // 2] = True
    mean, std = x[fit].mean(0), x[fit].std(0) + 1e-12
    x = (x - mean) / std
    clf = LogisticRegression(C=1.0, max_iter=2000).fit(x[fit], y[fit])
    err = float(np.mean(clf.predict(x[~fit]) != y[~fit]))
    return float(np.clip(2 * (1 - 2 * err), 0.0, 2.0))


def _features(model: DeployModel, images: np.ndarray) -> np.ndarray:
    model.eval()
    return features_of(model, images, BATCH)


def _sample(count: int, n: int, seed: int) -> np.ndarray:
    """Indices of at most ``n`` of ``count`` items, seeded, in order."""
    if count <= n:
        return np.arange(count)
    return np.sort(np.random.default_rng(seed).permutation(count)[:n])


def source_train_images(run: RunInfo) -> np.ndarray | None:
    """The source run's training split at its image size, reloaded as run.json records it; None (with a
    DataWarning saying why) when it cannot be read from here."""
    source = run.data.source
    if run.data.kind in ("digits", "arrays") or not Path(source).exists():
        warnings.warn(f"no source distance: the source run's training data ({source}) cannot be read from here",
                      DataWarning, stacklevel=3)
        return None
    try:
        return load_dataset(source, seed=run.seed, **run.data_options()).arrays("train", run.img_size)[0]
    except TlcError as exc:
        warnings.warn(f"no source distance: the source run's training data cannot be loaded ({exc})",
                      DataWarning, stacklevel=3)
        return None


def source_distance(run_dir: str | Path, target: Dataset, max_images: int = MAX_IMAGES,
                    seed: int = 0) -> SourceDistance | None:
    """The distance of ``target``'s training images from the training data of the run at ``run_dir``
    (module docstring), on at most ``max_images`` images per side; None when the source data is gone."""
    classifier, run = load_run_model(run_dir)
    source_images = source_train_images(run)
    if source_images is None:
        return None
    target_images, target_labels = target.arrays("train", run.img_size)
    source_model = DeployModel(classifier, run.preprocessing, run.input_channels)
    target_model = DeployModel(classifier, make_preprocessing(target, run), 1 if target.channels == 1 else 3)
    source_feats = _features(source_model, source_images[_sample(len(source_images), max_images, seed)])
    chosen = _sample(len(target_images), max_images, seed + 1)
    target_feats = _features(target_model, target_images[chosen])
    distance, fd, trace = normalised_frechet(source_feats, target_feats)
    labels = target_labels[chosen]
    fit = logme(target_feats, labels) if len(np.unique(labels)) > 1 else None
    return SourceDistance(distance=distance, frechet=fd, source_trace=trace, n_source=len(source_feats),
                          n_target=len(target_feats), source=str(run_dir),
                          pad=proxy_a_distance(source_feats, target_feats, seed), logme=fit)
