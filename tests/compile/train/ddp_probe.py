"""Worker functions for tests/compile/train/test_distributed.py (a spawned worker imports them by name)."""

from __future__ import annotations

import numpy as np
import torch


def first_step(npz: str, distributed: bool) -> tuple[float, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """One augmented, class-weighted training step of resnet18 on the first 16 training images (lr 0):
    the epoch loss, the gradients and the BatchNorm buffers, on 1 process or as rank 0 of the group."""
    from tlc.data import load_dataset
    from tlc.models.deploy import DeployModel
    from tlc.models.registry import create_model
    from tlc.train import loop
    from tlc.train.augment import AugmentConfig
    from tlc.train.distributed import LOCAL, DistContext
    from tlc.train.rundir import make_preprocessing
    from tlc.train.schedule import make_scheduler

    torch.set_num_threads(1)
    dist = DistContext.start(torch.device("cpu")) if distributed else LOCAL
    dataset = load_dataset(npz)
    images, labels = dataset.arrays("train", 16)
    x, y = torch.from_numpy(np.ascontiguousarray(images[:16])), torch.from_numpy(labels[:16].astype(np.int64))
    torch.manual_seed(0)
    classifier = create_model("resnet18", len(dataset.class_names))
    model = DeployModel(classifier, make_preprocessing(dataset, None), 1)
    dist.sync_batchnorm(classifier)
    optimizer = torch.optim.SGD(classifier.parameters(), lr=0.0)
    model.train()
    loss = loop.train_epoch(model, x, y, batch_size=16, optimizer=optimizer,
                            scheduler=make_scheduler(optimizer, 10, 5), gen=torch.Generator().manual_seed(0),
                            loss_weights=loop.class_weights(labels, len(dataset.class_names)),
                            augment=AugmentConfig(), dist=dist)
    grads = {n: p.grad.clone() for n, p in classifier.named_parameters()}
    buffers = {n: b.clone() for n, b in classifier.named_buffers()}
    dist.close()
    return loss, grads, buffers
