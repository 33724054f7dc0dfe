"""reports/report.html in every bundle (self-contained, hashed, renders in a browser), ``tlc report``,
``tlc diff`` on two real bundles and ``tlc build --previous``."""

from __future__ import annotations

import base64
import dataclasses
import importlib.util
import io
import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import tlc_runtime
from PIL import Image
from tlc.bundler.builder import build_bundle
from tlc.cli.main import run
from tlc.errors import ConfigError
from tlc.report.diff import require_comparable
from tlc.report.evidence import Evidence, golden_arrays
from tlc.report.html import ReportInput, render
from tlc_runtime.integrity import read_verified
from tlc_runtime.results import softmax

SECTIONS = {"bundle", "verdict", "metrics", "confusion", "roc", "recall", "trust", "latency", "flips"}
DOCS = Path(__file__).resolve().parents[3] / "docs"


class Page(HTMLParser):
    """Section ids, every attribute value, image sources, tags and text of an HTML page."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.ids, self.attrs, self.images, self.tags, self.text = set(), [], [], set(), []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        values = dict(attrs)
        self.attrs.extend(v or "" for v in values.values())
        if tag == "section":
            self.ids.add(values["id"])
        if tag == "img":
            self.images.append(values["src"])

    def handle_data(self, data):
        self.text.append(data)


def _decoded(uri: str) -> Image.Image:
    head, data = uri.split(",", 1)
    assert head == "data:image/png;base64"
    picture = Image.open(io.BytesIO(base64.b64decode(data)))
    picture.load()
    return picture


def _check_self_contained(text: str) -> Page:
    page = Page(text)
    assert not any(v.lower().startswith(("http:", "https:", "//")) for v in page.attrs)
    assert "http://" not in text and "https://" not in text
    assert not page.tags & {"script", "link", "iframe", "object"}
    assert page.images and all(min(_decoded(src).size) > 0 for src in page.images)
    return page


@pytest.fixture(scope="module")
def bundle_a(tiny_run_dir, tmp_path_factory):
    return build_bundle(tiny_run_dir, "x86-cpu", tmp_path_factory.mktemp("a") / "bundle", log=lambda _m: None).bundle


@pytest.fixture(scope="module")
def bundle_b(tiny_run_dir, bundle_a, tmp_path_factory):
    """A second run on the same data (another seed), built with --previous bundle_a."""
    from tlc.train import TrainConfig, train

    root = tmp_path_factory.mktemp("b")
    config = TrainConfig(arch="resnet18", img_size=16, epochs=1, batch_size=16, limit_train=80, patience=None,
                         seed=1)
    train(tiny_run_dir.parent / "digits01.npz", root / "run", config, progress=False)
    out = root / "bundle"
    assert run(["build", str(root / "run"), "-t", "x86-cpu", "-o", str(out), "--previous", str(bundle_a)]) == 0
    return out


def test_every_bundle_has_a_self_contained_hashed_report(bundle_a):
    clf = tlc_runtime.load(bundle_a)
    entry = clf.manifest.files["report_html"]
    text = read_verified(bundle_a, entry).decode("utf-8")  # hashed in the manifest like the other reports
    page = _check_self_contained(text)
    assert page.ids >= SECTIONS
    build = json.loads((bundle_a / "reports" / "build.json").read_text())
    words = " ".join(page.text)
    assert "PASSED" in words and build["verdict"]["resolution"] in words
    assert "(one-vs-rest)" not in words  # two classes: one ROC curve per model, on the positive class
    assert "p99 ms" in words and "build time" in words


def test_flipped_images_are_shown_with_both_probabilities(bundle_a):
    """Rows whose artifact logits are swapped flip; each gets a thumbnail with both top probabilities."""
    manifest = tlc_runtime.load(bundle_a).manifest
    inputs, reference, labels = golden_arrays(bundle_a, manifest)
    artifact = reference.copy()
    artifact[[0, 5]] = artifact[[0, 5], ::-1]
    page = _check_self_contained(render(ReportInput(manifest, {}, Evidence("golden", inputs, labels, reference,
                                                                               artifact))))
    words = " ".join(page.text)
    assert "Flipped predictions (2)" in words
    p_ref, p_art = softmax(reference), softmax(artifact)
    for i in (0, 5):
        assert f"#{i}" in words
        assert f"{p_ref[i].max():.3f}" in words and f"{p_art[i].max():.3f}" in words
    thumbs = [_decoded(src) for src in page.images if _decoded(src).size == (96, 96)]
    assert len(thumbs) == 2


def test_tlc_report_regenerates_from_the_bundle_and_opens_it(bundle_a, tmp_path, monkeypatch):
    opened = []
    monkeypatch.setattr("webbrowser.open", opened.append)
    out = tmp_path / "again.html"
    assert run(["report", str(bundle_a), "--out", str(out), "--open"]) == 0
    page = _check_self_contained(out.read_text(encoding="utf-8"))
    assert page.ids >= SECTIONS and "golden set" in " ".join(page.text)
    assert opened == [out.resolve().as_uri()]
    tlc_runtime.load(bundle_a, check=True)  # the bundle itself is untouched


def test_tlc_report_on_data_runs_pytorch_and_the_bundle_on_its_test_split(bundle_a, tiny_run_dir, tmp_path):
    out = tmp_path / "data.html"
    data = tiny_run_dir.parent / "digits01.npz"
    assert run(["report", str(bundle_a), "--out", str(out), "--data", str(data)]) == 0
    n_test = len(np.load(data)["test_labels"])
    assert f"test split of {data} ({n_test} images)" in " ".join(_check_self_contained(out.read_text()).text)


def test_tlc_report_refuses_to_write_inside_the_bundle(bundle_a, capsys):
    assert run(["report", str(bundle_a), "--out", str(bundle_a / "reports" / "report.html")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and "inside the bundle" in err and len(err.strip().splitlines()) == 1


def test_tlc_diff_on_two_real_bundles(bundle_a, bundle_b, tmp_path):
    out = tmp_path / "diff.json"
    assert run(["diff", str(bundle_a), str(bundle_b), "--json", str(out)]) == 0
    record = json.loads(out.read_text())
    changed = {c["what"]: c["changed"] for c in record["changes"]}
    assert changed["run id"] and changed["weights (artifact files sha256)"]
    assert not changed["data hash"] and not changed["precision"] and not changed["target"]
    # the impact, recomputed here from both bundles on A's golden set
    clf_a, clf_b = tlc_runtime.load(bundle_a), tlc_runtime.load(bundle_b)
    inputs, _, labels = golden_arrays(bundle_a, clf_a.manifest)
    pred_a, pred_b = clf_a.predict_logits(inputs).argmax(1), clf_b.predict_logits(inputs).argmax(1)
    impact = record["impact"]
    assert impact["n"] == len(inputs) and impact["changed"] == int((pred_a != pred_b).sum())
    assert sum(r["changed"] for r in impact["flips_per_class"]) == impact["changed"]
    acc = impact["metrics"]["accuracy"]
    assert acc["a"] == pytest.approx((pred_a == labels).mean()) and acc["b"] == pytest.approx((pred_b == labels).mean())
    for m in impact["metrics"].values():
        assert m["ci95"][0] <= m["delta"] <= m["ci95"][1]


def test_tlc_diff_on_data_uses_its_test_split(bundle_a, bundle_b, tiny_run_dir, tmp_path):
    out = tmp_path / "diff.json"
    data = tiny_run_dir.parent / "digits01.npz"
    assert run(["diff", str(bundle_a), str(bundle_b), "--data", str(data), "--json", str(out)]) == 0
    impact = json.loads(out.read_text())["impact"]
    assert impact["n"] == len(np.load(data)["test_labels"])
    assert sum(r["images"] for r in impact["flips_per_class"]) == impact["n"]


def test_build_previous_puts_the_change_record_in_the_report(bundle_b):
    clf = tlc_runtime.load(bundle_b)
    page = _check_self_contained(read_verified(bundle_b, clf.manifest.files["report_html"]).decode())
    assert "change" in page.ids
    assert "previous bundle (A)" in " ".join(page.text)


def test_diff_refuses_bundles_of_other_classes_in_one_line(bundle_a, tmp_path, capsys):
    other = tmp_path / "other"
    shutil.copytree(bundle_a, other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["class_names"] = ["cat", "dog"]
    (other / "manifest.json").write_text(json.dumps(manifest))
    assert run(["diff", str(bundle_a), str(other)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("Error: the bundles have different classes") and len(err.splitlines()) == 1


def test_diff_refuses_bundles_of_other_input_shapes(bundle_a):
    manifest = tlc_runtime.load(bundle_a).manifest
    wider = dataclasses.replace(manifest, input=dataclasses.replace(manifest.input, width=manifest.input.width * 2))
    with pytest.raises(ConfigError, match="different inputs"):
        require_comparable(manifest, wider)


def _render_script():
    spec = importlib.util.spec_from_file_location("render_report", DOCS / "render_report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_report_renders_in_a_headless_browser(bundle_a, tmp_path):
    script = _render_script()
    browser = script.find_browser()
    if browser is None:
        pytest.skip("no Chromium here (apt-get install chromium); docs/render_report.py needs one")
    png = script.screenshot(bundle_a / "reports" / "report.html", tmp_path / "report.png", browser)
    assert not script.is_blank(png)
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><html><body></body></html>")
    assert script.is_blank(script.screenshot(blank, tmp_path / "blank.png", browser))  # the check can fail
