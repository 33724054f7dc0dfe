"""``train()``: transfer learning from a dataset to a run directory (the library behind ``tlc train``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data import Dataset
from ..errors import ConfigError, DataError
from ..models.checkpoint import load_state_into, save_model
from ..models.classifier import Classifier
from ..models.deploy import DeployModel
from ..models.registry import create_model, get_arch
from ..models.weights import WeightsSource, resolve_weights, run_arch
from ..runs import BEST_CHECKPOINT, RunInfo, write_run_info
from .augment import AugmentConfig
from .checkpoint import LAST_CHECKPOINT, LAST_OPTIM, load_optimizer, read_last_state, save_last
from .config import TrainConfig
from .distributed import LOCAL, DistContext
from .loop import batches_per_epoch, class_weights, mean_loss, predict, recalibrate_batchnorm, train_epoch
from .metrics import classification_metrics
from .multitask import evaluate_tasks, task_class_weights, task_criterion, task_summary
from .progress import PLOT_NAME, Reporter, write_plot
from .rundir import (
    RunDirectory,
    build_run_info,
    check_out_dir,
    check_resume,
    make_preprocessing,
    new_run_id,
)
from .schedule import apply_freeze, make_optimizer, make_scheduler, trainable_stages
from .source_distance import SourceDistance, source_distance
from .spectral import SpectralRegularizer

DEFAULT_ARCH = "resnet18"


@dataclass
class LoopState:
    """What survives between epochs (and across --resume, via last_state.json)."""

    run_id: str
    content_hash: str
    epochs_done: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = -1
    best_score: tuple[float, float] = (float("-inf"), float("-inf"))
    best_val_metrics: dict[str, Any] = field(default_factory=dict)

    def stale_epochs(self) -> int:
        return self.epochs_done - self.best_epoch if self.best_epoch > 0 else self.epochs_done


def train(data: str | Path | Dataset, out_dir: str | Path, config: TrainConfig, progress: bool = True,
          overwrite: bool = False) -> RunInfo:
    """Train ``config.arch`` on ``data`` and write the run directory ``out_dir``; return its RunInfo.

    ``data`` is a path for ``tlc.data.load_dataset`` or an already loaded Dataset. A directory that
    already holds a run is refused unless ``overwrite`` (or ``config.resume``, which continues from
    last.safetensors at the next epoch up to ``config.epochs``). A run that fails leaves no directory
    (with ``overwrite``: the previous run untouched); see ``RunDirectory``.
    """
    out_dir = Path(out_dir)
    arch = config.arch or run_arch(config.weights) or DEFAULT_ARCH
    get_arch(arch)
    device = _device(config.device)
    check_out_dir(out_dir, config.resume, overwrite)  # refuse early; checked again under the lock
    source = resolve_weights(config.weights, arch)
    dataset = load_training_data(data, config)
    threads = torch.get_num_threads()
    torch.set_num_threads(config.cpu_threads())
    reporter = Reporter(progress)
    try:
        distance = _source_distance(source, dataset, config, reporter)
        with RunDirectory(out_dir, config.resume, overwrite) as work_dir:
            info = _run(dataset, work_dir, config, arch, source, device, reporter)
            if distance is not None:
                info = replace(info, source_distance=distance.to_dict())
                write_run_info(work_dir, info)
    finally:
        torch.set_num_threads(threads)
    log_result(reporter, info, out_dir)
    return info


def _source_distance(source: WeightsSource, dataset: Dataset, config: TrainConfig,
                     reporter: Reporter) -> SourceDistance | None:
    """A run as --weights (not on --resume): how far this data is from its training data, logged."""
    if source.kind != "run" or config.resume or dataset.tasks:
        return None
    distance = source_distance(source.spec, dataset, seed=config.seed)
    if distance is not None:
        reporter.log(distance.describe())
    return distance


def log_result(reporter: Reporter, info: RunInfo, out_dir: Path) -> None:
    """The closing line: the best epoch's test metrics."""
    if info.test_metrics:
        test = info.test_metrics
        reporter.log(f"best epoch {info.best_epoch}: test balanced accuracy {test['balanced_accuracy']:.4f}, "
                     f"AUC {test['auc'] if test['auc'] is None else round(test['auc'], 4)}  → {out_dir}")
        if "tasks" in test:
            reporter.log(f"test {task_summary(test)}")


def _run(dataset: Dataset, out_dir: Path, config: TrainConfig, arch: str, source: WeightsSource,
         device: torch.device, reporter: Reporter, dist: DistContext = LOCAL) -> RunInfo:
    """The training loop; with several ranks (``dist``) every rank runs it and only rank 0 writes."""
    class_names = tuple(dataset.class_names)
    tensors = _split_tensors(dataset, config, device)
    train_x, train_y = tensors["train"]
    loss_weights = _loss_weights(dataset, train_y, config, device)
    prep = make_preprocessing(dataset, source.run)

    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    classifier = _create_classifier(dataset, arch, config)
    source.apply(classifier, class_names)
    model = DeployModel(classifier, prep, 1 if dataset.channels == 1 else 3).to(device)
    dist.sync_batchnorm(classifier)
    optimizer = make_optimizer(classifier, config, source.pretrained)
    state = dist.broadcast(LoopState(new_run_id(arch), dataset.content_hash))
    if config.resume:
        state = _restore_everywhere(out_dir, config, classifier, optimizer, dataset.content_hash, dist)
    batch_size = min(config.batch_size, len(train_x))
    steps_per_epoch = batches_per_epoch(len(train_x), batch_size)
    scheduler = make_scheduler(optimizer, steps_per_epoch * config.epochs, steps_per_epoch,
                               start_step=steps_per_epoch * state.epochs_done)
    augment = AugmentConfig(hflip=config.hflip) if config.augment else None
    sizes = {name: len(t[1]) for name, t in tensors.items()}

    def run_info(test_metrics: dict[str, Any] | None = None) -> RunInfo:
        return build_run_info(run_id=state.run_id, arch=arch, dataset=dataset, split_sizes=sizes, config=config,
                              prep=prep, weights_init=source.describe(), history=state.history,
                              best_epoch=state.best_epoch, val_metrics=state.best_val_metrics,
                              test_metrics=test_metrics)

    _log_start(dataset, config, arch, source, sizes, reporter)
    spectral = SpectralRegularizer(classifier, config.spectral_reg, config.img_size) if config.spectral_reg else None
    for epoch in range(state.epochs_done, config.epochs):
        started = time.perf_counter()
        model.train()
        n_stages = trainable_stages(config, epoch, len(classifier.backbone_stages()))
        apply_freeze(classifier, n_stages)
        with reporter.epoch_bar(epoch + 1, config.epochs, len(train_x)) as advance:
            train_loss = train_epoch(model, train_x, train_y, batch_size=batch_size, optimizer=optimizer,
                                     scheduler=scheduler, gen=torch.Generator().manual_seed(config.seed + epoch),
                                     loss_weights=None if dataset.tasks else loss_weights, augment=augment,
                                     on_batch=advance,
                                     criterion=task_criterion(loss_weights) if dataset.tasks else None, dist=dist,
                                     regularizer=spectral)
        recalibrate_batchnorm(model, train_x, dist=dist)
        val = _evaluate(model, tensors["val"], loss_weights, dataset, dist)
        record = _epoch_record(epoch, train_loss, val, n_stages, optimizer, started, spectral, dist)
        state.history.append(record)
        state.epochs_done = epoch + 1
        score = (val["balanced_accuracy"] if val["balanced_accuracy"] is not None else float("-inf"), -val["loss"])
        improved = dist.broadcast(score > state.best_score)  # rank 0 decides, every rank follows
        if improved:
            state.best_epoch, state.best_score, state.best_val_metrics = epoch + 1, score, val
        if dist.is_main:
            if improved:
                save_model(classifier, out_dir / BEST_CHECKPOINT)
            save_last(out_dir, classifier, optimizer, _state_dict(state, config))
            write_run_info(out_dir, run_info())
        reporter.epoch_line(record, config.epochs, improved)
        if "tasks" in val:
            reporter.log(f"          val {task_summary(val)}")
        if dist.broadcast(config.patience is not None and state.stale_epochs() >= config.patience):
            reporter.log(f"early stop: no better validation balanced accuracy for {config.patience} epochs")
            break
    if spectral is not None:
        spectral.close()  # training-only: the model leaves without the hook
    return _finish(model, out_dir, tensors, loss_weights, dataset, dist, run_info, state.history)


def _log_start(dataset: Dataset, config: TrainConfig, arch: str, source: WeightsSource, sizes: dict[str, int],
               reporter: Reporter) -> None:
    """What the run is about to do: dropped duplicates, data sizes, weights, and options that change training."""
    if dataset.dropped_duplicates:
        first = dataset.dropped_duplicates[0]
        reporter.log(f"dropped {len(dataset.dropped_duplicates)} train image(s) also in val/test (--duplicates "
                     f"drop), e.g. {first['id']} = {first['same_as']}; all listed in run.json")
    mc = config.mc_dropout_spec
    reporter.log(f"training {arch} on {sizes['train']} images ({len(dataset.class_names)} classes), "
                 f"validating on {sizes['val']}, weights: {source.describe()}"
                 + (f", {mc.describe()}" if mc else "")
                 + (f", spectral regularisation {config.spectral_reg:g}" if config.spectral_reg else ""))
    parent_mc = source.run.mc_dropout if source.run else None
    if parent_mc and parent_mc != mc:
        reporter.log(f"note: the parent run trained with {parent_mc.describe()}; this run uses "
                     f"{mc.describe() if mc else 'none'} (pass --mc-dropout to choose)")


def _epoch_record(epoch: int, train_loss: float, val: dict[str, Any], n_stages: int,
                  optimizer: torch.optim.Optimizer, started: float, spectral: SpectralRegularizer | None,
                  dist: DistContext) -> dict[str, Any]:
    """One epoch's line of run.json ``history``."""
    record = {"epoch": epoch + 1, "train_loss": train_loss, "val_loss": val["loss"],
              "val_accuracy": val["accuracy"], "val_balanced_accuracy": val["balanced_accuracy"],
              "val_macro_f1": val["macro_f1"], "val_auc": val["auc"], "trainable_stages": n_stages,
              "lr": optimizer.param_groups[-1]["lr"], "seconds": round(time.perf_counter() - started, 3)}
    if spectral is not None:
        record["spectral_penalty"] = dist.sum(spectral.epoch_mean()) / dist.world_size
    if "tasks" in val:
        record["val_task_balanced_accuracy"] = {k: m.get("balanced_accuracy") for k, m in val["tasks"].items()}
    return record


def _finish(model: DeployModel, out_dir: Path, tensors: dict[str, tuple[torch.Tensor, torch.Tensor]],
            loss_weights: Any, dataset: Dataset, dist: DistContext, run_info: Callable[..., RunInfo],
            history: list[dict[str, Any]]) -> RunInfo:
    """Load the best checkpoint on every rank, score the test split, write run.json and the plot (rank 0)."""
    if dist.is_main:
        load_state_into(model.classifier, out_dir / BEST_CHECKPOINT)
    model.classifier.load_state_dict(dist.broadcast(model.classifier.state_dict() if dist.is_main else None))
    test = _evaluate(model, tensors["test"], loss_weights, dataset, dist) if len(tensors["test"][1]) else {}
    info = run_info(test)
    if dist.is_main:
        write_run_info(out_dir, info)
        write_plot(out_dir / PLOT_NAME, history)
    return info


def _device(name: str) -> torch.device:
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}; use cpu or cuda") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but no CUDA GPU is available; use --device cpu")
    return device


def load_training_data(data: str | Path | Dataset, config: TrainConfig) -> Dataset:
    """``data`` as ``train`` reads it: a path loaded and split with the config's options, or a Dataset
    given its ROI (ensemble members share one loaded Dataset, so one split)."""
    if not isinstance(data, (str, Path)):
        from ..data.roi import with_roi

        return with_roi(data, config.roi)
    from ..data import load_dataset

    return load_dataset(data, seed=config.seed, val_fraction=config.val_fraction,
                        test_fraction=config.test_fraction, dicom=config.dicom_policy,
                        duplicates=config.duplicates, roi=config.roi, tasks=config.tasks)


def _split_tensors(dataset: Dataset, config: TrainConfig,
                   device: torch.device) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Every split resized once (Dataset.arrays, the runtime's resize) as raw NHWC tensors."""
    out = {}
    for name in ("train", "val", "test"):
        split = dataset.splits.get(name)
        if split is None or len(split) == 0:
            images = np.zeros((0, config.img_size, config.img_size, dataset.channels), np.uint8)
            labels = np.zeros((0, len(dataset.tasks)) if dataset.tasks else 0, np.int64)
        else:
            images, labels = dataset.arrays(name, config.img_size)
            if dataset.tasks:
                labels = split.task_labels.copy()  # N×T, primary first (tlc.train.multitask)
        if name == "train" and config.limit_train is not None and len(labels) > config.limit_train:
            keep = np.sort(np.random.default_rng(config.seed).permutation(len(labels))[: config.limit_train])
            images, labels = images[keep], labels[keep]
        out[name] = (torch.from_numpy(np.ascontiguousarray(images)).to(device),
                     torch.from_numpy(np.asarray(labels, dtype=np.int64)).to(device))
    for name in ("train", "val"):
        if len(out[name][1]) < (2 if name == "train" else 1):
            raise DataError(f"{dataset.source}: the {name} split has {len(out[name][1])} images; "
                            "training needs at least 2 train and 1 validation image (add data or use "
                            "automatic splits)")
    return out


def _create_classifier(dataset: Dataset, arch: str, config: TrainConfig) -> Classifier:
    """A Classifier, or a multi-task one with a head per task of the dataset."""
    if not dataset.tasks:
        return create_model(arch, len(dataset.class_names), channel_adapter=config.channel_adapter,
                            mc_dropout=config.mc_dropout_spec)
    if config.channel_adapter != "replicate" or config.mc_dropout_spec is not None:
        raise ConfigError("multi-task training takes neither --channel-adapter learned nor --mc-dropout yet")
    if config.spectral_reg:
        raise ConfigError("multi-task training takes no --spectral-reg yet")
    from ..models.multitask import create_multitask_model

    return create_multitask_model(arch, [(t.name, len(t.class_names)) for t in dataset.tasks], config.task_attention)


def _loss_weights(dataset: Dataset, train_y: torch.Tensor, config: TrainConfig, device: torch.device) -> Any:
    """Class weights of the train labels (None unless ``class_weighted``); a list of one per task for
    a multi-task dataset."""
    labels = train_y.cpu().numpy()
    if dataset.tasks:
        weights = task_class_weights(labels, dataset.tasks)
        return [w.to(device) if config.class_weighted else None for w in weights]
    return class_weights(labels, len(dataset.class_names)).to(device) if config.class_weighted else None


def _evaluate(model: DeployModel, split: tuple[torch.Tensor, torch.Tensor], loss_weights: Any,
              dataset: Dataset, dist: DistContext = LOCAL) -> dict[str, Any]:
    images, labels = split
    if dataset.tasks:
        return evaluate_tasks(model, images, labels, dataset.tasks, loss_weights)
    logits = predict(model, images, dist)
    labels_np = labels.cpu().numpy()
    weights = loss_weights.cpu() if loss_weights is not None else None
    return {"loss": mean_loss(logits, labels_np, weights), **classification_metrics(logits, labels_np)}


def _state_dict(state: LoopState, config: TrainConfig) -> dict[str, Any]:
    return {"run_id": state.run_id, "content_hash": state.content_hash, "epochs_done": state.epochs_done,
            "history": state.history, "best_epoch": state.best_epoch, "best_score": list(state.best_score),
            "best_val_metrics": state.best_val_metrics, "config": config.to_dict()}


def _restore_everywhere(out_dir: Path, config: TrainConfig, classifier: Classifier,
                        optimizer: torch.optim.Optimizer, content_hash: str, dist: DistContext) -> LoopState:
    """``_restore`` on rank 0 (the rank that reads the run directory), its result sent to every rank."""
    state = _restore(out_dir, config, classifier, optimizer, content_hash) if dist.is_main else None
    if not dist.active:
        return state
    weights, optim, state = dist.broadcast((_cpu(classifier.state_dict()), _cpu(optimizer.state_dict()), state)
                                           if dist.is_main else None)
    classifier.load_state_dict(weights)
    optimizer.load_state_dict(optim)
    return state


def _cpu(tree: Any) -> Any:
    """Tensors in nested dicts/lists moved to the CPU (for broadcasting as objects)."""
    if isinstance(tree, torch.Tensor):
        return tree.cpu()
    if isinstance(tree, dict):
        return {k: _cpu(v) for k, v in tree.items()}
    if isinstance(tree, list | tuple):
        return type(tree)(_cpu(v) for v in tree)
    return tree


def _restore(out_dir: Path, config: TrainConfig, classifier: Classifier, optimizer: torch.optim.Optimizer,
             content_hash: str) -> LoopState:
    stored = read_last_state(out_dir)
    check_resume(stored, config, content_hash, out_dir)
    load_state_into(classifier, out_dir / LAST_CHECKPOINT)
    load_optimizer(optimizer, out_dir / LAST_OPTIM, stored["optimizer_param_groups"])
    if stored["epochs_done"] >= config.epochs:
        raise ConfigError(f"{out_dir} already trained {stored['epochs_done']} epochs; "
                          f"resume with more than {stored['epochs_done']} epochs")
    return LoopState(run_id=stored["run_id"], content_hash=content_hash, epochs_done=stored["epochs_done"],
                     history=stored["history"], best_epoch=stored["best_epoch"],
                     best_score=tuple(stored["best_score"]), best_val_metrics=stored["best_val_metrics"])
