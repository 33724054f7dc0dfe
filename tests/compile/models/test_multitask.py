"""MultiTaskClassifier: one backbone, a head per task attending over the shared spatial map."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tlc.errors import ConfigError  # noqa: E402
from tlc.models import create_model, list_models  # noqa: E402
from tlc.models.multitask import TaskHead, create_multitask_model  # noqa: E402

TASKS = (("finding", 3), ("view", 2), ("quality", 4))


@pytest.mark.parametrize("arch", list_models())
def test_the_spatial_map_pools_to_the_backbone_features(arch):
    torch.manual_seed(0)
    model = create_multitask_model(arch, TASKS, "none").eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        spatial = model.forward_spatial(x)
        assert spatial.ndim == 4 and spatial.shape[1] == model.num_features
        assert spatial.shape[2] * spatial.shape[3] > 1, "the map is taken before the global pooling"
        torch.testing.assert_close(spatial.mean(dim=(2, 3)), model.forward_features(x), rtol=1e-4, atol=1e-5)


def test_backbone_keys_are_the_single_task_ones_and_heads_are_per_task():
    multi = create_multitask_model("resnet18", TASKS, "dynamic")
    single = create_model("resnet18", 3)
    backbone = lambda m: {k for k in m.state_dict() if k.startswith("backbone.")}  # noqa: E731
    assert backbone(multi) == backbone(single)
    heads = {k.split(".")[1] for k in multi.state_dict() if k.startswith("heads.")}
    assert heads == {"finding", "view", "quality"}
    assert multi.head is multi.heads["finding"].head and multi.num_classes == 3
    assert multi.head_parameters  # the optimiser's head group holds every task's head and query
    assert {id(p) for p in multi.head_parameters()} == {id(p) for p in multi.heads.parameters()}


@pytest.mark.parametrize("attention", ["static", "dynamic", "none"])
def test_outputs_are_primary_logits_then_one_per_task(attention):
    model = create_multitask_model("resnet18", TASKS, attention).eval()
    with torch.no_grad():
        out = model(torch.randn(5, 3, 64, 64))
    assert list(out) == ["logits", "task_view", "task_quality"]
    assert [tuple(v.shape) for v in out.values()] == [(5, 3), (5, 2), (5, 4)]


def test_a_static_query_reads_the_positions_it_matches():
    head = TaskHead(num_features=4, num_classes=2, attention="static", dropout=0.0)
    spatial = torch.zeros(1, 4, 3, 3)
    spatial[0, :, 1, 2] = torch.tensor([9.0, 1.0, 2.0, 3.0])  # the one position with a large channel 0
    pooled = spatial.mean(dim=(2, 3))
    torch.testing.assert_close(head.attend(spatial, pooled), pooled)  # zero query: average pooling
    with torch.no_grad():
        head.query.copy_(torch.tensor([20.0, 0.0, 0.0, 0.0]))
    torch.testing.assert_close(head.attend(spatial, pooled), spatial[:, :, 1, 2], atol=1e-3, rtol=0)


def test_a_dynamic_query_depends_on_the_image_and_both_queries_learn():
    for attention in ("static", "dynamic"):
        head = TaskHead(num_features=8, num_classes=2, attention=attention, dropout=0.0)
        spatial = torch.randn(4, 8, 3, 3)
        loss = torch.nn.functional.cross_entropy(head(spatial, spatial.mean(dim=(2, 3))), torch.tensor([0, 1, 0, 1]))
        loss.backward()
        grads = [p.grad for n, p in head.named_parameters() if n.startswith("query")]
        assert grads and all(g is not None and float(g.abs().sum()) > 0 for g in grads)
    head = TaskHead(num_features=2, num_classes=2, attention="dynamic", dropout=0.0)
    with torch.no_grad():
        head.query.weight.copy_(torch.eye(2) * 10)
    spatial = torch.tensor([[[[1.0, 0.0]], [[0.0, 1.0]]]]).repeat(2, 1, 1, 1)  # two positions, channel-pure
    pooled = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # each image's pooled vector points at another position
    attended = head.attend(spatial, pooled)
    assert attended[0, 0] > 0.9 and attended[1, 1] > 0.9


@pytest.mark.parametrize(("tasks", "attention", "message"), [
    ((("finding", 3),), "static", "at least two tasks"),
    ((("a", 2), ("a", 3)), "static", "unique"),
    ((("a", 2), ("b c", 3)), "static", "letters, digits and underscores"),
    ((("a", 2), ("b", 1)), "static", "fewer than two classes"),
    ((("a", 2), ("b", 2)), "spatial", "static, dynamic, none"),
])
def test_bad_tasks_are_config_errors(tasks, attention, message):
    with pytest.raises(ConfigError, match=message):
        create_multitask_model("resnet18", tasks, attention)


def test_exported_graph_names_every_task_output(tmp_path):
    pytest.importorskip("onnxruntime")
    from tlc.export.onnx_export import export_onnx, input_spec_for, output_specs
    from tlc.models import IMAGENET_MEAN, IMAGENET_STD, DeployModel
    from tlc_runtime.manifest import Preprocessing

    prep = Preprocessing(resize="antialias-bilinear", value_range=(0.0, 255.0), mean=IMAGENET_MEAN,
                         std=IMAGENET_STD, channel_rule="replicate")
    torch.manual_seed(0)
    model = DeployModel(create_multitask_model("resnet18", TASKS, "dynamic"), prep, 1).eval()
    inputs = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 1), dtype=np.uint8)
    report = export_onnx(model, input_spec_for(32, 32, 1, "uint8"), tmp_path / "m.onnx", inputs)
    assert [o.name for o in output_specs(tmp_path / "m.onnx")] == ["logits", "task_view", "task_quality"]
    assert set(report.max_abs_output_delta) == {"task_view", "task_quality"}
