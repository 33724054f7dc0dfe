"""report.html: one self-contained page (inline CSS, pictures as data: URIs, no script, no network)."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from tlc_runtime.manifest import Manifest

from ..verify.compare import compare_logits, softmax
from . import figures
from .evidence import Evidence
from .stats import wilson

MAX_THUMBNAILS = 48
# sections of build.json shown as tables where the bundle has them, in this order
TRUST_SECTIONS = ("calibration", "conformal", "ood", "uncertainty", "members")

CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left;
font-size:.9em;vertical-align:top}th{background:#f4f4f4}.pass{color:#116611;font-weight:bold}
.fail{color:#aa1111;font-weight:bold}img{max-width:100%}.thumbs{display:flex;flex-wrap:wrap;gap:.8em}
figure{margin:0;font-size:.8em;text-align:center}.muted{color:#777}"""


@dataclass(frozen=True)
class ReportInput:
    """Everything one report shows; ``latency`` and ``diff`` are optional sections."""

    manifest: Manifest
    build: dict[str, Any]                       # reports/build.json
    evidence: Evidence
    reliability_png: bytes | None = None
    latency: dict[str, Any] | None = None       # {"where": ..., "batches": {batch: Latency fields}}
    diff: dict[str, Any] | None = None          # tlc.report.diff.diff_bundles(...)


def esc(value: Any) -> str:
    return html.escape(fmt(value))


def fmt(value: Any) -> str:
    """A value as a reader wants it: floats short, lists joined, None as a dash."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return ", ".join(fmt(v) for v in value)
    return str(value)


def table(header: Sequence[str] | None, rows: Iterable[Sequence[Any]]) -> str:
    """An HTML table of escaped cells; ``header`` None for a key/value table (first column as headings)."""
    head = "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>" if header else ""
    body = "".join("<tr>" + "".join(f"<{'th' if header is None and i == 0 else 'td'}>{esc(v)}"
                                    f"</{'th' if header is None and i == 0 else 'td'}>" for i, v in enumerate(row))
                   + "</tr>" for row in rows)
    return f"<table>{head}{body}</table>"


def flat(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Nested dicts as (dotted key, value) rows."""
    rows: list[tuple[str, Any]] = []
    for key, value in data.items():
        if isinstance(value, dict):
            rows.extend(flat(value, f"{prefix}{key}."))
        else:
            rows.append((f"{prefix}{key}", value))
    return rows


def section(title: str, body: str, anchor: str) -> str:
    return f'<section id="{anchor}"><h2>{html.escape(title)}</h2>{body}</section>'


def image(uri: str | None, alt: str) -> str:
    return f'<img src="{uri}" alt="{html.escape(alt)}">' if uri else f'<p class="muted">no {html.escape(alt)}</p>'


def render(inp: ReportInput) -> str:
    """The whole page."""
    from .diff_html import diff_section

    m = inp.manifest
    parts = [_header(inp), _verdict(inp), _metrics(inp), _figures(inp), _trust(inp), _latency(inp),
             _flips(inp), _ladder(inp.build), diff_section(inp.diff) if inp.diff else ""]
    title = html.escape(f"tlc report — {m.model_name} ({m.target.name}, {m.target.precision})")
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f"<style>{CSS}</style></head><body><h1>{title}</h1>{''.join(parts)}</body></html>\n")


def _header(inp: ReportInput) -> str:
    m, p = inp.manifest, inp.manifest.provenance
    rows = [("model", f"{m.model_name} ({m.arch})"), ("classes", list(m.class_names)),
            ("input", f"{m.input.height}×{m.input.width}×{m.input.channels} {m.input.dtype}"),
            ("target", f"{m.target.name}: {m.target.backend} on {m.target.device}, {m.target.precision}"),
            ("artifact", m.default_artifact), ("run", p.get("run_id")), ("data hash", p.get("data_hash")),
            ("built", p.get("created")), ("tlc", p.get("tlc")),
            ("evaluated on", inp.evidence.source)]
    return section("Bundle", table(None, rows), "bundle")


def _verdict(inp: ReportInput) -> str:
    verdict, budget = inp.build.get("verdict", {}), inp.build.get("budget", {})
    passed = verdict.get("passed")
    head = (f'<p class="{"pass" if passed else "fail"}">{"PASSED" if passed else "FAILED"}: '
            f"the artifact is within its accuracy budget on the build's test split</p>" if passed is not None
            else '<p class="muted">no verdict recorded</p>')
    checks = table(("check", "value judged", "limit", "passed"),
                   [(c.get("name"), c.get("value"), c.get("limit"), c.get("passed"))
                    for c in verdict.get("checks", [])])
    return section("Verdict", head + checks + "<h3>budget</h3>" + table(None, flat(budget))
                   + f"<p>resolution: {esc(verdict.get('resolution'))} "
                     f"(confidence {esc(verdict.get('confidence'))})</p>", "verdict")


def _metrics(inp: ReportInput) -> str:
    ev, k = inp.evidence, len(inp.manifest.class_names)
    c = compare_logits(ev.reference, ev.artifact, ev.labels, k, bootstrap=0)
    rows = [("images", c.n), ("top-1 agreement", c.agreement), ("flipped predictions", len(ev.flipped)),
            ("max |Δprob|", c.max_abs_prob_delta)]
    if ev.labels is not None:
        rows += [("accuracy (reference → artifact)", f"{c.accuracy_reference:.4f} → {c.accuracy_candidate:.4f}"),
                 ("balanced accuracy (reference → artifact)",
                  f"{c.balanced_accuracy_reference:.4f} → {c.balanced_accuracy_candidate:.4f}")]
    return section("Agreement and accuracy", table(None, rows), "metrics")


def _figures(inp: ReportInput) -> str:
    ev, names = inp.evidence, inp.manifest.class_names
    if ev.labels is None:
        return section("Confusion, ROC, recall", '<p class="muted">the evaluation set has no labels</p>', "figures")
    preds = [ev.reference.argmax(1), ev.artifact.argmax(1)]
    k = len(names)
    counts = np.bincount(ev.labels, minlength=k)
    rows = []
    for c, name in enumerate(names):
        cells = [name, int(counts[c])]
        for pred in preds:
            hits = int(((pred == c) & (ev.labels == c)).sum())
            ci = wilson(hits, int(counts[c]))
            cells.append(f"{hits / counts[c]:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "—")
        rows.append(cells)
    recall = table(("class", "images", "recall reference [95% CI]", "recall artifact [95% CI]"), rows)
    return (section("Confusion matrices", image(figures.confusion_pair(ev.labels, preds, names), "confusion matrices"),
                    "confusion")
            + section("ROC curves", image(figures.roc_figure(ev.labels, [ev.reference, ev.artifact], names),
                                          "ROC curves"), "roc")
            + section("Per-class recall", image(figures.recall_figure(ev.labels, preds, names), "recall")
                      + recall, "recall"))


def _trust(inp: ReportInput) -> str:
    parts = []
    if inp.reliability_png:
        parts.append(image(figures.png_uri(inp.reliability_png), "reliability diagram"))
    for name in TRUST_SECTIONS:
        if inp.build.get(name):
            parts.append(f"<h3>{html.escape(name)}</h3>" + table(None, flat(_json_section(inp.build[name]))))
    if not parts:
        return ""
    return section("Calibration, coverage and uncertainty", "".join(parts), "trust")


def _json_section(value: Any) -> dict[str, Any]:
    if isinstance(value, list):  # e.g. members: one row per entry
        return {str(i): v for i, v in enumerate(value)}
    return value if isinstance(value, dict) else {"value": value}


def _latency(inp: ReportInput) -> str:
    if not inp.latency:
        return ""
    rows = [(b, s["n"], f"{s['p50_ms']:.3f}", f"{s['p99_ms']:.3f}", f"{s['p50_ms'] / int(b):.3f}")
            for b, s in inp.latency["batches"].items()]
    return section("Latency", f"<p>{esc(inp.latency.get('where'))}</p>"
                   + table(("batch", "runs", "p50 ms", "p99 ms", "p50 ms per image"), rows), "latency")


def _flips(inp: ReportInput) -> str:
    ev, names = inp.evidence, inp.manifest.class_names
    flipped = ev.flipped
    if len(flipped) == 0:
        return section("Flipped predictions", f"<p>none: the artifact's top-1 class equals PyTorch's on all "
                                              f"{len(ev.reference)} images</p>", "flips")
    p_ref, p_art = softmax(ev.reference), softmax(ev.artifact)
    cells = []
    for i in flipped[:MAX_THUMBNAILS]:
        r, a = int(p_ref[i].argmax()), int(p_art[i].argmax())
        truth = f"true {names[ev.labels[i]]}<br>" if ev.labels is not None else ""
        cells.append(f'<figure>{image(figures.thumbnail(ev.inputs[i]), f"image {i}")}<figcaption>#{i}<br>{truth}'
                     f"PyTorch {html.escape(names[r])} {p_ref[i, r]:.3f}<br>"
                     f"artifact {html.escape(names[a])} {p_art[i, a]:.3f}</figcaption></figure>")
    more = f"<p>{len(flipped) - MAX_THUMBNAILS} more not shown</p>" if len(flipped) > MAX_THUMBNAILS else ""
    return section(f"Flipped predictions ({len(flipped)})", f'<div class="thumbs">{"".join(cells)}</div>{more}',
                   "flips")


def _ladder(build: dict[str, Any]) -> str:
    ladder = (build.get("artifact") or {}).get("ladder")
    if not ladder:
        return ""
    rows = [(r.get("rung"), r.get("did"), r.get("passed"), r.get("agreement"), r.get("balanced_accuracy_drop"),
             r.get("max_abs_prob_delta"), r.get("n_float"), r.get("seconds"),
             r.get("skipped") or fmt(r.get("violations") or r.get("test_split_violations") or ""))
            for r in ladder]
    return section("INT8 ladder", table(("rung", "does", "passed", "agreement", "bal-acc drop", "max |Δprob|",
                                          "float layers", "seconds", "notes"), rows), "ladder")
