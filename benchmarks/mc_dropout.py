"""MC-dropout benchmark: how fast epistemic uncertainty converges as the number of fixed-mask samples K
grows, and what K costs in latency on ONNX Runtime.

Model: a run trained with ``--mc-dropout`` (``--run``), or one trained here on ``--data`` (ResNet-18 at
32 px, dropout 0.3 in the head and on the last stage's input; ``--weights`` may start it from an earlier
run). The deploy graph is ``tlc.models.mc_dropout.McDropoutModel``: masks drawn once from a seed.

Convergence (test split): for K = 4, 8, 16, 32 and several mask seeds, against a K = 256 reference
(its own seed): mean |Δ epistemic|, Spearman rank correlation of the epistemic values, the share of
images whose predicted label differs from the reference's, and the share whose "above the 95th
percentile of validation epistemic" flag differs (the threshold computed per K as ``tlc build`` does).

Latency (ONNX Runtime CPU, one intra-op thread, median of repeated runs): the plain model and the
wrapper for each K, at batch 1 and 32, for head-only masks (backbone once) and head+stage masks (the
last stage on N·K inputs), both built from the same trained weights.

    python benchmarks/mc_dropout.py --data ../shared/data/pneumoniamnist.npz --out bench-out/mc
    python benchmarks/mc_dropout.py --run RUN_DIR --out bench-out/mc      # an existing --mc-dropout run

Output: a table on stdout, OUT/mc_dropout.json (every number and the arguments) and OUT/mc_dropout.png.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

KS = (4, 8, 16, 32)
REFERENCE_K = 256


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="../shared/data/pneumoniamnist.npz")
    p.add_argument("--run", default=None, help="a run trained with --mc-dropout (skips training)")
    p.add_argument("--out", default="bench-out/mc")
    p.add_argument("--weights", default="none", help="tlc train --weights for the run trained here")
    p.add_argument("--img-size", type=int, default=32)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--rate", type=float, default=0.3)
    p.add_argument("--where", choices=["head", "head+stage"], default="head+stage")
    p.add_argument("--seeds", type=int, default=5, help="mask seeds per K")
    p.add_argument("--repeats", type=int, default=30, help="timed runs per latency point")
    return p.parse_args()


def train_run(args: argparse.Namespace, out: Path) -> Path:
    from tlc.train import TrainConfig, train

    config = TrainConfig(arch="resnet18", weights=args.weights, img_size=args.img_size, epochs=args.epochs,
                         lr=3e-3, backbone_lr_mult=1.0, patience=None, mc_dropout=args.rate,
                         mc_dropout_where=args.where)
    train(args.data, out / "run", config, overwrite=True)
    return out / "run"


def splits(run_dir: Path, data: str | None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    from tlc.data import load_dataset
    from tlc.runs import read_run_info

    info = read_run_info(run_dir)
    dataset = load_dataset(data or info.data.source, seed=info.seed, **info.data_options())
    return {s: dataset.arrays(s, info.img_size) for s in ("val", "test")}


def outputs(wrapper: Any, images: np.ndarray, batch: int = 64) -> dict[str, np.ndarray]:
    import torch

    parts: dict[str, list[np.ndarray]] = {}
    with torch.inference_mode():
        for i in range(0, len(images), batch):
            for k, v in wrapper(torch.from_numpy(images[i:i + batch])).items():
                parts.setdefault(k, []).append(v.numpy())
    return {k: np.concatenate(v) for k, v in parts.items()}


def convergence(deploy: Any, data: dict, img: int, seeds: int) -> dict[str, Any]:
    from scipy.stats import spearmanr
    from tlc.models.mc_dropout import McDropoutModel

    def run(k: int, seed: int, split: str) -> dict[str, np.ndarray]:
        return outputs(McDropoutModel(deploy, k, seed, (img, img)), data[split][0])

    ref = run(REFERENCE_K, 10_000, "test")
    ref_flag = ref["epistemic"] > np.quantile(run(REFERENCE_K, 10_000, "val")["epistemic"], 0.95)
    rows = []
    for k in KS:
        for seed in range(seeds):
            got = run(k, seed, "test")
            flag = got["epistemic"] > np.quantile(run(k, seed, "val")["epistemic"], 0.95)
            rows.append({"k": k, "seed": seed,
                         "mean_abs_delta_epistemic": float(np.abs(got["epistemic"] - ref["epistemic"]).mean()),
                         "spearman_epistemic": float(spearmanr(got["epistemic"], ref["epistemic"])[0]),
                         "label_flips": float((got["logits"].argmax(1) != ref["logits"].argmax(1)).mean()),
                         "abstain_flag_flips": float((flag != ref_flag).mean()),
                         "mean_epistemic": float(got["epistemic"].mean())})
    summary = {}
    for k in KS:
        mine = [r for r in rows if r["k"] == k]
        summary[k] = {m: [float(np.mean([r[m] for r in mine])), float(np.std([r[m] for r in mine]))]
                      for m in mine[0] if m not in ("k", "seed")}
    return {"reference": {"k": REFERENCE_K, "mean_epistemic": float(ref["epistemic"].mean()),
                          "mean_aleatoric": float(ref["aleatoric"].mean()), "mean_total": float(ref["total"].mean()),
                          "n_test": len(ref["epistemic"])},
            "per_seed": rows, "summary": summary}


def latency(model: Any, img: int, path: Path, repeats: int) -> dict[int, float]:
    import onnxruntime as ort
    import torch

    example = torch.zeros(2, img, img, 1, dtype=torch.uint8)
    torch.onnx.export(model, (example,), str(path), opset_version=17, dynamo=False, input_names=["pixels"],
                      dynamic_axes={"pixels": {0: "batch"}})
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    result = {}
    for batch in (1, 32):
        x = np.random.default_rng(0).integers(0, 256, (batch, img, img, 1), dtype=np.uint8)
        for _ in range(3):
            session.run(None, {"pixels": x})
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            session.run(None, {"pixels": x})
            times.append(time.perf_counter() - start)
        result[batch] = 1000 * float(np.median(times))
    return result


def latencies(run_dir: Path, img: int, out: Path, repeats: int) -> dict[str, Any]:
    import dataclasses

    from tlc.models import DeployModel
    from tlc.models.checkpoint import load_model_file
    from tlc.models.mc_dropout import McDropoutModel
    from tlc.runs import read_run_info

    info = read_run_info(run_dir)
    table: dict[str, Any] = {}
    for where in ("head", "head+stage"):
        mc = dataclasses.replace(info.mc_dropout, where=where)
        classifier = load_model_file(run_dir / info.checkpoint, info.arch, len(info.class_names), mc).eval()
        deploy = DeployModel(classifier, info.preprocessing, info.input_channels).eval()
        if where == "head":
            table["plain"] = latency(deploy, img, out / "plain.onnx", repeats)
        table[where] = {k: latency(McDropoutModel(deploy, k, 0, (img, img)), img, out / "mc.onnx", repeats)
                        for k in KS}
    return table


def plot(path: Path, conv: dict[str, Any], lat: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    ks = list(KS)
    s = conv["summary"]
    a.errorbar(ks, [s[k]["mean_abs_delta_epistemic"][0] for k in ks],
               yerr=[s[k]["mean_abs_delta_epistemic"][1] for k in ks], marker="o", label="mean |Δ epistemic|")
    a.set_xscale("log", base=2)
    a.set_xlabel("K (MC samples)")
    a.set_ylabel(f"mean |Δ epistemic| vs K={REFERENCE_K} (nats)")
    a2 = a.twinx()
    a2.plot(ks, [s[k]["spearman_epistemic"][0] for k in ks], "s--", color="tab:orange", label="Spearman ρ")
    a2.set_ylabel("Spearman ρ with reference")
    a.set_title("epistemic convergence (test split, mean ± sd over mask seeds)")
    for where, style in (("head", "-"), ("head+stage", "--")):
        for batch, colour in ((1, "tab:blue"), (32, "tab:red")):
            b.plot(ks, [lat[where][k][batch] for k in ks], style, marker="o", color=colour,
                   label=f"{where}, batch {batch}")
    for batch, colour in ((1, "tab:blue"), (32, "tab:red")):
        b.axhline(lat["plain"][batch], color=colour, linestyle=":", label=f"plain, batch {batch}")
    b.set_xscale("log", base=2)
    b.set_yscale("log")
    b.set_xlabel("K (MC samples)")
    b.set_ylabel("ONNX Runtime latency, 1 thread (ms)")
    b.legend(fontsize=7)
    b.set_title("what K costs")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    from tlc.models.checkpoint import load_deploy_model

    args = parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    run_dir = Path(args.run) if args.run else train_run(args, out)
    deploy, info = load_deploy_model(run_dir)
    data = splits(run_dir, None if args.run else args.data)
    conv = convergence(deploy, data, info.img_size, args.seeds)
    lat = latencies(run_dir, info.img_size, out, args.repeats)
    result = {"args": vars(args), "run": {"dir": str(run_dir), "arch": info.arch, "img_size": info.img_size,
                                          "mc_dropout": vars(info.mc_dropout), "test_metrics": {
                                              k: info.test_metrics.get(k) for k in ("balanced_accuracy", "auc")}},
              "convergence": conv, "latency_ms": lat, "seconds": round(time.perf_counter() - started, 1)}
    (out / "mc_dropout.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    plot(out / "mc_dropout.png", conv, lat)
    print(f"reference K={REFERENCE_K}: mean epistemic {conv['reference']['mean_epistemic']:.4f} nats "
          f"on {conv['reference']['n_test']} test images")
    print("   K  mean|Δepi|  spearman  label flips  flag flips   | ms b1 head  b1 h+s  b32 head  b32 h+s")
    for k in KS:
        s = conv["summary"][k]
        print(f"{k:4d}  {s['mean_abs_delta_epistemic'][0]:9.4f}  {s['spearman_epistemic'][0]:8.3f}  "
              f"{100 * s['label_flips'][0]:10.2f}%  {100 * s['abstain_flag_flips'][0]:9.2f}%   | "
              f"{lat['head'][k][1]:10.2f}  {lat['head+stage'][k][1]:6.2f}  {lat['head'][k][32]:8.2f}  "
              f"{lat['head+stage'][k][32]:7.2f}")
    print(f"plain: {lat['plain'][1]:.2f} ms (batch 1), {lat['plain'][32]:.2f} ms (batch 32)")


if __name__ == "__main__":
    main()
