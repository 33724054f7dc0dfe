"""``python -m tlc_runtime info``: what a bundle holds, whether its files are intact, what can run it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import BackendUnavailableError, BundleError, IntegrityError, UnsafePathError
from .integrity import verify_file
from .loader import choose_backend
from .manifest import FileEntry, Manifest, read_manifest
from .schema import to_dict


def file_status(bundle_dir: str | Path, entry: FileEntry) -> str:
    """"ok", "missing", "modified" or "unsafe path" for one recorded file (never raises for these)."""
    try:
        verify_file(bundle_dir, entry)
    except UnsafePathError:
        return "unsafe path"
    except IntegrityError:
        return "modified"
    except BundleError:
        return "missing"
    return "ok"


def bundle_summary(bundle_dir: str | Path) -> dict[str, Any]:
    """JSON-ready summary: model, input, classes, artifacts (with the backend that would run each),
    golden set, and every file's integrity status. ``intact`` is True when every file is "ok"."""
    manifest = read_manifest(bundle_dir)
    files = [{"role": role, "path": entry.path, "bytes": entry.bytes,
              "status": file_status(bundle_dir, entry)} for role, entry in _roles(manifest)]
    return {
        "bundle": str(bundle_dir),
        "model_name": manifest.model_name,
        "arch": manifest.arch,
        "class_names": list(manifest.class_names),
        "input": to_dict(manifest.input),
        "preprocessing": to_dict(manifest.preprocessing),
        "target": to_dict(manifest.target),
        "default_artifact": manifest.default_artifact,
        "artifacts": [{"name": a.name, "format": a.format, "backend": a.backend, "precision": a.precision,
                       "runs_here_on": _runner(a)} for a in manifest.artifacts],
        "golden": {"count": manifest.golden.count, "atol_prob": manifest.golden.atol_prob,
                   "min_agreement": manifest.golden.min_agreement},
        "files": files,
        "intact": all(f["status"] == "ok" for f in files),
    }


def format_summary(summary: dict[str, Any]) -> str:
    """Human-readable text of ``bundle_summary`` (ASCII apart from names taken from the manifest)."""
    inp, tgt, gold = summary["input"], summary["target"], summary["golden"]
    lines = [
        f"bundle     {summary['bundle']}",
        f"model      {summary['model_name']} ({summary['arch']})",
        f"classes    {', '.join(summary['class_names'])}",
        f"input      {inp['name']}: {inp['dtype']} Nx{inp['height']}x{inp['width']}x{inp['channels']} "
        f"({inp['layout']}), {summary['preprocessing']['source_bit_depth']}-bit source",
        f"target     {tgt['name']} ({tgt['backend']}, {tgt['device']}, {tgt['precision']})",
        "artifacts",
    ]
    for art in summary["artifacts"]:
        mark = "*" if art["name"] == summary["default_artifact"] else " "
        lines.append(f"  {mark} {art['name']}: {art['format']} for {art['backend']}, {art['precision']} "
                     f"-> runs here on: {art['runs_here_on']}")
    lines.append(f"golden     {gold['count']} images, atol_prob {gold['atol_prob']:g}, "
                 f"min_agreement {gold['min_agreement']:g}")
    lines.append("files")
    for f in summary["files"]:
        lines.append(f"  [{f['status']}] {f['path']} ({f['role']}, {f['bytes']} bytes)")
    lines.append("integrity  " + ("OK: every file matches its sha256" if summary["intact"]
                                  else "FAILED: rebuild or re-copy the bundle"))
    return "\n".join(lines)


def _roles(manifest: Manifest) -> list[tuple[str, FileEntry]]:
    pairs = [(f"{a.name}/{role}", e) for a in manifest.artifacts for role, e in a.files.items()]
    pairs.append(("golden", manifest.golden.file))
    return pairs + list(manifest.files.items())


def _runner(artifact: Any) -> str:
    try:
        return choose_backend(artifact).name
    except BackendUnavailableError as exc:
        return f"none ({exc})"
