"""``tlc verify`` — what users put in their CI. Exit 0 pass, 1 fail, 2 usage/input error."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from .output import console, log, pct


@click.command()
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--data", required=True, help="Labelled data (image folder, CSV manifest or .npz).")
@click.option("--reference", type=click.Path(path_type=Path), default=None,
              help="The PyTorch run the bundle was built from (default: the path recorded in the bundle).")
@click.option("--split", default="test", show_default=True, help="train | val | test | all")
@click.option("--max-drop", type=float, default=None, help="Max balanced-accuracy drop (fraction, e.g. 0.01).")
@click.option("--min-agreement", type=float, default=None, help="Min top-1 agreement (fraction).")
@click.option("--max-prob-delta", type=float, default=None, help="Max |Δprob| against PyTorch.")
@click.option("--confidence", type=float, default=None,
              help="One-sided confidence the margins must hold at (default: the bundle's; 0 judges observed values).")
@click.option("--backend", default="auto", show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None, help="Write the report as JSON.")
@click.option("--junit", type=click.Path(path_type=Path), default=None, help="Write JUnit XML for CI systems.")
@click.option("--plot", type=click.Path(path_type=Path), default=None, help="Write a PNG of the comparison.")
def verify(bundle: Path, data: str, reference: Path | None, split: str, max_drop: float | None,
           min_agreement: float | None, max_prob_delta: float | None, confidence: float | None, backend: str,
           device: str, json_out: Path | None, junit: Path | None, plot: Path | None) -> int:
    """Check BUNDLE against the reference PyTorch model on labelled DATA."""
    import time

    from tlc_runtime.errors import TlcRuntimeError

    from ..bundler.reports import write_json
    from ..errors import TlcError
    from ..verify.junit import write_junit, write_junit_error
    from ..verify.runner import verify as run_verify

    started = time.perf_counter()
    try:
        result = run_verify(bundle, data, reference=reference, split=split, max_drop=max_drop,
                            min_agreement=min_agreement, max_prob_delta=max_prob_delta, confidence=confidence,
                            backend=backend, device=device, log=log)
    except (TlcError, TlcRuntimeError, OSError) as exc:
        if junit:  # CI still gets a report saying why there is no verdict
            write_junit_error(bundle, exc, junit, time.perf_counter() - started)
        raise
    if json_out:
        write_json(json_out, result.to_dict())
    if junit:
        write_junit(result, junit, time.perf_counter() - started)
    if plot:
        from ..verify.plot import plot_verification

        plot_verification(result, plot)
    _print(result)
    return 0 if result.passed else 1


def _print(result) -> None:
    c = result.comparison
    r = result.runner
    proxy = f" — ONNX Runtime proxy for {r['artifact_backend']}" if r["proxy"] else ""
    console.print(f"[bold]{result.bundle}[/bold] on {c.n} images ({result.split} split of {result.data})")
    console.print(f"ran on {r['backend']} / {r['device']} computing in [bold]{r['precision']}[/bold]{proxy}")
    table = Table("metric", "reference (PyTorch)", "bundle", "change")
    table.add_row("accuracy", pct(c.accuracy_reference), pct(c.accuracy_candidate),
                  pct(c.accuracy_candidate - c.accuracy_reference))
    lo, hi = c.balanced_accuracy_drop_ci95 or (None, None)
    table.add_row("balanced accuracy", pct(c.balanced_accuracy_reference), pct(c.balanced_accuracy_candidate),
                  f"{pct(-c.balanced_accuracy_drop)} (95% CI of drop {pct(lo)} … {pct(hi)})")
    for name, ref, cand in zip(result.class_names, c.recall_reference or (), c.recall_candidate or (), strict=False):
        table.add_row(f"recall {name}", pct(ref), pct(cand), "—" if ref is None else pct(cand - ref))
    table.add_row("top-1 agreement", "", pct(c.agreement), f"flip rate {pct(c.flip_rate)}")
    table.add_row("|Δprob| max / mean", "", f"{c.max_abs_prob_delta:.2e} / {c.mean_abs_prob_delta:.2e}", "")
    console.print(table)
    _print_trust(result.extra)
    for check in result.checks:
        mark = "[green]PASS[/green]" if check.passed else "[red]FAIL[/red]"
        console.print(f"{mark} {check.describe()}")
    console.print(f"budget at {result.verdict.confidence:.0%} one-sided confidence "
                  f"({'non-inferiority' if result.verdict.confidence else 'observed values'}); "
                  f"{result.verdict.resolution}")
    console.print("[bold green]verification passed[/bold green]" if result.passed
                  else "[bold red]verification FAILED[/bold red]")



def _print_trust(extra: dict) -> None:
    """The bundle's calibration and prediction sets on this data."""
    cal = extra.get("calibration")
    if cal:
        how = (f"temperature {cal['temperature']:.4g}: ECE {pct(cal['ece_before'])} before → "
               f"{pct(cal['ece_after'])} after" if cal["temperature"] else f"not calibrated: ECE {pct(cal['ece_after'])}")
        console.print(f"calibration ({cal['n']} images, 15 bins) {how}")
    sets = extra.get("conformal")
    if sets:
        console.print(f"{sets['method'].upper()} prediction sets for {sets['coverage']:.0%} coverage: empirical "
                      f"coverage {pct(sets['empirical_coverage'])}, mean set size {sets['mean_set_size']:.3f}, "
                      f"abstain {pct(sets['abstain_rate'])}")
    if extra.get("uncertainty"):
        from ..verify.uncertainty import uncertainty_line

        console.print(uncertainty_line(extra["uncertainty"]))
    if extra.get("ood"):
        from ..verify.ood import ood_line

        console.print(ood_line(extra["ood"]))
    for name, task in extra.get("tasks", {}).items():
        console.print(f"task {name} ({task['output']}): {_part_line(task)}")
    for i, member in enumerate(extra.get("members", ())):
        console.print(f"member {i + 1} ({member['run_id']}, {member['arch']}): {_part_line(member)}")


def _part_line(part: dict) -> str:
    """A task's or member's agreement, balanced accuracy where labelled, and verdict."""
    drop = part.get("balanced_accuracy_drop")
    accuracy = "" if drop is None else (f", balanced accuracy {pct(part['balanced_accuracy_reference'])} → "
                                        f"{pct(part['balanced_accuracy_candidate'])} on {part['labelled']} labelled")
    return (f"agreement {pct(part['agreement'])}{accuracy}, max |Δprob| {part['max_abs_prob_delta']:.2e}: "
            f"{'within budget' if part['passed'] else 'OVER BUDGET'}")
