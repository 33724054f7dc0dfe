"""``tlc build``."""

from __future__ import annotations

from pathlib import Path

import click

from .output import console, log, pct, phrases
from .targets_cmd import complete_target


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--target", "-t", required=True, shell_complete=complete_target,
              help="Target name (tlc targets) or a target TOML file.")
@click.option("--out", "-o", required=True, type=click.Path(path_type=Path), help="Bundle directory to write.")
@click.option("--precision", type=click.Choice(["fp32", "fp16", "int8"]), default=None,
              help="Override the target's default precision.")
@click.option("--data", default=None, help="The run's dataset (default: the source recorded in run.json).")
@click.option("--calib", default=None, help="Calibration data for INT8 (default: the run's training split).")
@click.option("--calibration-method", type=click.Choice(["minmax", "entropy", "percentile"]), default=None)
@click.option("--calibration-samples", type=int, default=None)
@click.option("--max-drop", type=float, default=None, help="Budget: max balanced-accuracy drop (fraction).")
@click.option("--min-agreement", type=float, default=None, help="Budget: min top-1 agreement (fraction).")
@click.option("--confidence", type=float, default=None,
              help="Budget: one-sided confidence the margins must hold at (default 0.95; 0 judges observed values).")
@click.option("--no-calibrate", is_flag=True,
              help="Keep the model's own probabilities (no temperature scaling on the validation split).")
@click.option("--coverage", type=float, default=None,
              help="Prediction sets hold the true label with this probability (split conformal; default 0.9, "
                   "and without this flag a validation split too small for the sets gives a bundle without them).")
@click.option("--conformal", type=click.Choice(["lac", "aps"]), default="lac", show_default=True,
              help="Conformal score: lac (smallest sets; best with two classes) or aps (adaptive, non-randomised).")
@click.option("--mc-samples", type=int, default=None, metavar="K",
              help="MC-dropout passes in the graph (aleatoric/epistemic uncertainty; fixed seeded masks); default "
                   "16 for a run trained with --mc-dropout, else off; 0 turns it off (TensorRT targets: always off).")
@click.option("--no-ood", is_flag=True,
              help="Leave out the out-of-distribution gate (energy + Mahalanobis score in the graph; on by default, "
                   "off for TensorRT targets).")
@click.option("--ood-acceptance", type=float, default=None, metavar="A",
              help="The OOD threshold accepts this fraction of in-distribution validation images (default 0.95).")
@click.option("--overwrite", is_flag=True, help="Replace an existing bundle (only once the new one is complete).")
@click.option("--sign", "sign_key", type=click.Path(path_type=Path), default=None,
              help="Sign the bundle with this Ed25519 private key (tlc keygen), before it is moved into place.")
@click.option("--previous", type=click.Path(path_type=Path), default=None,
              help="An earlier bundle: its change record against this one goes into reports/report.html.")
def build(run_dir: Path, target: str, out: Path, precision: str | None, data: str | None, calib: str | None,
          calibration_method: str | None, calibration_samples: int | None, max_drop: float | None,
          min_agreement: float | None, confidence: float | None, no_calibrate: bool, coverage: float | None,
          conformal: str, mc_samples: int | None, no_ood: bool, ood_acceptance: float | None, overwrite: bool,
          sign_key: Path | None, previous: Path | None) -> None:
    """Export RUN_DIR, quantize/build for TARGET, verify against PyTorch, write one bundle.

    Exits 1 when the artifact breaks its accuracy budget (no bundle is written), 2 on a user error
    such as an existing --out or another build writing the same --out.
    """
    from dataclasses import replace

    from ..bundler.builder import build_bundle
    from ..bundler.ood import OodOptions
    from ..bundler.trust import TrustOptions
    from ..errors import ConfigError
    from ..targets import load_target

    tgt = load_target(target)
    prec = precision or tgt.precision
    tol = tgt.tolerance(prec)
    given = {"max_balanced_accuracy_drop": max_drop, "min_agreement": min_agreement, "confidence": confidence}
    try:
        tol = replace(tol, **{k: v for k, v in given.items() if v is not None})
    except ValueError as exc:
        raise ConfigError(f"budget: {exc}") from None
    if no_ood and ood_acceptance is not None:
        raise ConfigError("use --no-ood or --ood-acceptance, not both")
    ood = OodOptions(enabled=not no_ood, required=ood_acceptance is not None,
                     **({} if ood_acceptance is None else {"acceptance": ood_acceptance}))
    trust = TrustOptions(calibrate=not no_calibrate, conformal=conformal, required=coverage is not None,
                         mc_samples=mc_samples, ood=ood,
                         **({} if coverage is None else {"coverage": coverage}))
    options = {"calibration_method": calibration_method, "calibration_samples": calibration_samples}
    key = None
    if sign_key is not None:
        from tlc_runtime.signing import load_private_key

        key = load_private_key(sign_key)  # an unusable key fails now, not after the build
    if previous is not None:
        import tlc_runtime

        tlc_runtime.load(previous)  # an unreadable previous bundle fails now, not after the build
    result = build_bundle(run_dir, tgt, out, precision=prec, data=data, calib=calib, tolerance=tol,
                          overwrite=overwrite, options={k: v for k, v in options.items() if v is not None},
                          trust=trust, log=log, sign_key=key, previous=previous)
    c = result.verification
    runner = result.report["runner"]
    proxy = f" (ONNX Runtime proxy for {runner['proxy_for']})" if runner.get("proxy_for") else ""
    phrases(f"[bold green]built[/bold green] {result.bundle}", f"target={tgt.name}", f"precision={prec}",
            f"agreement={pct(c.agreement)}", f"bal-acc drop={pct(c.balanced_accuracy_drop)}",
            f"max|Δprob|={c.max_abs_prob_delta:.2e}", proxy.strip())
    console.print(f"budget: {result.report['verdict']['resolution']}")
    cal, sets = result.report["calibration"], result.report["conformal"]
    if cal["temperature"]:
        console.print(f"calibration: T = {cal['temperature']:.4g}, test ECE {pct(cal['test']['ece_before'])} → "
                      f"{pct(cal['test']['ece_after'])}")
    if "skipped" in sets:
        console.print(f"no prediction sets: {sets['skipped']}")
    else:
        console.print(f"{sets['method'].upper()} prediction sets at {sets['coverage']:.0%}: test coverage "
                      f"{pct(sets['test']['empirical_coverage'])}, mean set size {sets['test']['mean_set_size']:.3f}")
    if result.report.get("uncertainty"):
        from ..verify.uncertainty import uncertainty_line

        console.print(uncertainty_line(result.report["uncertainty"]["test"]))
    gate = result.report.get("ood")
    if gate and "skipped" in gate:
        phrases("no OOD gate:", gate["skipped"], sep=" ")
    elif gate:
        from ..verify.ood import ood_line

        console.print(ood_line(gate["test"]))
