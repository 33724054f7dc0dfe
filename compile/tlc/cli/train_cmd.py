"""``tlc train``."""

from __future__ import annotations

from pathlib import Path

import click

from .output import pct, phrases

# What tlc.models.list_models() returns (kept here so --help needs no torchvision import; a test keeps them equal)
ARCHITECTURES = ("resnet18", "resnet34", "resnet50", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large",
                 "efficientnet_b0", "vgg16", "vgg19", "small_cnn")


@click.command()
@click.argument("data")
@click.option("--arch", default=None, help="Backbone: " + ", ".join(ARCHITECTURES) + " (default resnet18, "
              "or the parent run's arch when --weights is a run).")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="Run directory to write.")
@click.option("--weights", default="none", show_default=True,
              help="none | torchvision weights name (e.g. ResNet18_Weights.DEFAULT, from TORCH_HOME) | "
                   "local weights file | earlier tlc run directory (same-domain transfer).")
@click.option("--img-size", default=64, show_default=True, type=int)
@click.option("--epochs", default=10, show_default=True, type=int)
@click.option("--batch-size", default=64, show_default=True, type=int)
@click.option("--lr", default=1e-3, show_default=True, type=float, help="Head learning rate (AdamW).")
@click.option("--backbone-lr-mult", default=0.1, show_default=True, type=float,
              help="Backbone LR = lr × this (discriminative learning rates).")
@click.option("--freeze", type=click.Choice(["none", "head", "gradual"]), default="none", show_default=True,
              help="head: train the head only; none: full fine-tune; gradual: unfreeze stages top-down.")
@click.option("--unfreeze-every", default=1, show_default=True, type=int, help="Epochs per stage (gradual).")
@click.option("--patience", default=5, show_default=True, type=int, help="Early stopping on val balanced accuracy.")
@click.option("--no-augment", is_flag=True, help="Disable light augmentation.")
@click.option("--hflip", is_flag=True, help="Allow horizontal flips (off: X-rays are not mirror-symmetric).")
@click.option("--no-class-weights", is_flag=True, help="Plain (unweighted) cross-entropy.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--limit-train", default=None, type=int, help="Use at most N training images (stratified).")
@click.option("--duplicates", type=click.Choice(["error", "drop"]), default="error", show_default=True,
              help="An image in both train and test (or val): error refuses the data; drop removes the train "
                   "copies (val/test stay as published) and lists them in run.json.")
@click.option("--roi", default=None, metavar="auto|BOXES.csv",
              help="Crop each image before resizing: 'auto' (drop the black border: intensity rule of "
                   "tlc_runtime.roi) or a CSV of boxes (path,x0,y0,x1,y1; for .npz split,index,x0,y0,x1,y1; "
                   "pixels, x1/y1 exclusive). Recorded in the bundle; the runtime crops the same way.")
@click.option("--channel-adapter", type=click.Choice(["replicate", "learned"]), default="replicate",
              show_default=True, help="Grey → the backbone's 3 channels: replicate, or a learned 1×1 convolution "
              "(initialised to replication, trained with the head, exported in the graph).")
@click.option("--members", default=1, show_default=True, type=int,
              help="Train an ensemble of N members (seeds seed, seed+1, ...) written as one ensemble run.")
@click.option("--resume", is_flag=True, help="Continue an interrupted run in --out.")
@click.option("--overwrite", is_flag=True, help="Replace an existing run in --out (only once the new run is "
              "complete; a failed run leaves the old one untouched).")
@click.option("--dicom-window", default="none", show_default=True, metavar="WINDOW",
              help="How .dcm pixels are windowed: none (stored values) | file (the file's VOI window) | "
                   "lung | bone | soft-tissue | brain | CENTER,WIDTH; windowed values span 0..65535.")
@click.option("--dicom-rescale/--no-dicom-rescale", default=None,
              help="Apply RescaleSlope/Intercept (e.g. to HU) to .dcm pixels; default: on with a window, off without.")
@click.option("--mc-dropout", default=None, type=float, metavar="RATE",
              help="Train with dropout RATE (0 < RATE < 1) for MC-dropout uncertainty (tlc build --mc-samples); "
                   "default off. Not inherited from a --weights run.")
@click.option("--mc-dropout-where", type=click.Choice(["head", "head+stage"]), default="head", show_default=True,
              help="Where MC dropout goes: before the head's linear layer, or also on the input of the "
                   "backbone's last stage.")
@click.option("--tasks", default=None, metavar="COL1,COL2,...",
              help="Multi-task: the CSV's label columns, primary first (its logits are the graph's "
                   "'logits'); an empty cell leaves that image out of that task's loss and metrics.")
@click.option("--task-attention", type=click.Choice(["static", "dynamic", "none"]), default="static",
              show_default=True, help="How each task's head reads the spatial features: a learned query, "
                                      "a query from the pooled features, or the pooled features.")
@click.option("--spectral-reg", default=0.0, show_default=True, type=float, metavar="LAMBDA",
              help="Spectral regularisation weight (training only): LAMBDA × the share of each image's "
                   "feature-map energy in its top singular direction is added to the loss, to keep "
                   "features discriminative when fine-tuning on few real images after pretraining on "
                   "simulated ones; 0 = off.")
@click.option("--threads", default=None, type=int,
              help="CPU threads for training (default: every CPU this process may use; with --nproc, its share).")
@click.option("--nproc", default=1, show_default=True, type=int,
              help="Data-parallel processes on this node (DistributedDataParallel via torchrun's launcher: gloo "
                   "on CPU, one GPU each with nccl on cuda); --batch-size is the global batch. See docs/distributed.md.")
@click.option("--nnodes", default=1, show_default=True, type=int, help="Nodes (the same command on each).")
@click.option("--node-rank", default=None, type=int, help="This node's rank, 0..nnodes-1 (0 writes the run).")
@click.option("--rdzv-endpoint", default=None, metavar="HOST:PORT", help="Node 0's address, for several nodes.")
def train(data: str, arch: str | None, out: Path, weights: str, img_size: int, epochs: int, batch_size: int,
          lr: float, backbone_lr_mult: float, freeze: str, unfreeze_every: int, patience: int,
          no_augment: bool, hflip: bool, no_class_weights: bool, seed: int, limit_train: int | None,
          resume: bool, overwrite: bool, dicom_window: str, dicom_rescale: bool | None, duplicates: str,
          roi: str | None, channel_adapter: str, members: int, mc_dropout: float | None,
          mc_dropout_where: str, tasks: str | None, task_attention: str, spectral_reg: float, threads: int | None, nproc: int, nnodes: int,
          node_rank: int | None, rdzv_endpoint: str | None) -> None:
    """Fine-tune a pretrained backbone on DATA (image folder, CSV manifest or .npz)."""
    from ..train import TrainConfig
    from ..train import train as train_run

    config = TrainConfig(arch=arch, weights=weights, img_size=img_size, epochs=epochs, batch_size=batch_size,
                         lr=lr, backbone_lr_mult=backbone_lr_mult, freeze=freeze,
                         unfreeze_every=unfreeze_every, patience=patience, augment=not no_augment,
                         hflip=hflip, class_weighted=not no_class_weights, seed=seed,
                         limit_train=limit_train, resume=resume, dicom_window=dicom_window,
                         dicom_rescale=dicom_rescale, duplicates=duplicates, channel_adapter=channel_adapter,
                         roi=roi if roi in (None, "auto") else str(Path(roi).expanduser().resolve()),
                         mc_dropout=mc_dropout, mc_dropout_where=mc_dropout_where,
                         tasks=None if tasks is None else tuple(t.strip() for t in tasks.split(",")),
                         task_attention=task_attention, spectral_reg=spectral_reg, threads=threads)
    from ..launch import LaunchSpec

    spec = LaunchSpec(nproc, nnodes, node_rank, rdzv_endpoint)
    if spec.distributed:
        _train_distributed(data, out, config, spec, members, overwrite)
        return
    if members != 1:
        from ..train.ensemble import train_members

        info = train_members(data, out, config, members, overwrite=overwrite)
        phrases(f"[bold]ensemble run[/bold] {out}:", f"{len(info.members)} {info.members[0].arch} members", sep=" ")
        return
    info = train_run(data, out, config, overwrite=overwrite)
    metrics = info.test_metrics or {}
    auc = metrics.get("auc")
    phrases(f"[bold]run[/bold] {out}", f"arch={info.arch}", f"best epoch={info.best_epoch}",
            f"test balanced accuracy={pct(metrics.get('balanced_accuracy'))}",
            f"AUC={'—' if auc is None else f'{auc:.4f}'}", info.mc_dropout.describe() if info.mc_dropout else "")
    for name, task in metrics.get("tasks", {}).items():
        phrases(f"  task {name}:", f"test balanced accuracy={pct(task.get('balanced_accuracy'))}",
                f"(n={task.get('n', 0)})", sep=" ")


def _train_distributed(data: str, out: Path, config, spec, members: int, overwrite: bool) -> None:
    """``--nproc``/``--nnodes``: ``tlc.train.ddp``; node 0 prints the run, the others a line."""
    from ..errors import ConfigError
    from ..train.ddp import train_ddp

    if members != 1:
        raise ConfigError("--members and --nproc cannot be combined; train the members one after another")
    info = train_ddp(data, out, config, spec, overwrite=overwrite)
    if info is None:
        phrases(f"node {spec.node_rank} of {spec.nnodes}: done (node 0 wrote the run)")
        return
    metrics = info.test_metrics or {}
    phrases(f"[bold]run[/bold] {out}", f"arch={info.arch}", f"best epoch={info.best_epoch}",
            f"processes={spec.world_size}", f"test balanced accuracy={pct(metrics.get('balanced_accuracy'))}")
