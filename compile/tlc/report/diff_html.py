"""The change-record section of report.html (``tlc build --previous``)."""

from __future__ import annotations

from typing import Any

from .html import esc, section, table


def diff_section(diff: dict[str, Any]) -> str:
    """What changed against the previous bundle and what it does to predictions on the same images."""
    changed = [(c["what"], c["a"], c["b"]) for c in diff["changes"] if c["changed"]]
    same = ", ".join(c["what"] for c in diff["changes"] if not c["changed"])
    effect = diff["impact"]
    parts = [f"<p>previous bundle (A): {esc(diff['a'])}; this bundle (B): {esc(diff['b'])}</p>",
             table(("changed", "A (previous)", "B (this)"), changed) if changed else "<p>no recorded change</p>",
             f"<p>unchanged: {esc(same or '—')}</p>",
             f"<p>evaluated on the {esc(diff['evaluated_on'])}: {effect['changed']} of {effect['n']} "
             "predictions changed</p>"]
    rows = effect["flips_per_class"]
    if rows:
        parts.append(table(tuple(rows[0]), [tuple(r.values()) for r in rows]))
    for name, m in (effect.get("metrics") or {}).items():
        parts.append(f"<p>{esc(name.replace('_', ' '))}: {m['a']:.4f} → {m['b']:.4f}, Δ {m['delta']:+.4f} "
                     f"(paired bootstrap 95% CI {m['ci95'][0]:+.4f} to {m['ci95'][1]:+.4f})</p>")
    return section("Change record (impact assessment)", "".join(parts), "change")
