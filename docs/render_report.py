"""Render a bundle's report.html in headless Chromium and check the screenshot is not blank.

    python docs/render_report.py BUNDLE_OR_HTML [docs/report.png]

The test tests/compile/bundler/test_build_report.py uses the same functions (skipped without Chromium).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
WINDOW = (1200, 4400)


def find_browser() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def screenshot(page: Path, png: Path, browser: str, window: tuple[int, int] = WINDOW) -> Path:
    """Chromium, headless and offline, renders ``page`` from disk into ``png``."""
    png = png.resolve()
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--user-data-dir={profile}", f"--screenshot={png}",
                        f"--window-size={window[0]},{window[1]}", page.resolve().as_uri()],
                       check=True, capture_output=True, timeout=120)
    return png


def is_blank(png: Path) -> bool:
    """True when the picture is a single colour (or nearly: fewer than 1 % of pixels differ from the mode)."""
    import numpy as np
    from PIL import Image

    pixels = np.asarray(Image.open(png).convert("L"))
    _, counts = np.unique(pixels, return_counts=True)
    return counts.max() > 0.99 * pixels.size


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    target = Path(argv[0])
    page = target / "reports" / "report.html" if target.is_dir() else target
    png = Path(argv[1]) if len(argv) > 1 else Path(__file__).with_name("report.png")
    browser = find_browser()
    if browser is None:
        print("no Chromium found (apt-get install chromium)")
        return 2
    screenshot(page, png, browser)
    if is_blank(png):
        print(f"{png} is blank: the report did not render")
        return 1
    print(f"rendered {page} into {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
