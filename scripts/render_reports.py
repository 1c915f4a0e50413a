"""Render HTML reports in headless Chromium and save full-page screenshots; fail on a broken image or a console
error.

Needs Chromium (Debian: ``apt-get install chromium``) and the ``playwright`` Python package, driving that
Chromium (no browser download)::

    python scripts/render_reports.py OUTPUT_DIR SCREENSHOT_DIR [--width 1280]

Every ``*.html`` at the root of OUTPUT_DIR (``sub-<label>.html``, ``group.html``) becomes ``<name>.png``;
``--thumbnail`` also writes the first screen of each, scaled for the README.
"""

import argparse
import shutil
import sys
from pathlib import Path


def chromium_path():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    sys.exit("no Chromium found: apt-get install chromium")


def render(html_files, out_dir, width=1280, thumbnail=None):
    """Screenshots of each report; returns ``{report: [problems]}``."""
    from playwright.sync_api import sync_playwright

    problems = {}
    out_dir.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        for html in html_files:
            page = browser.new_page(viewport={"width": width, "height": 900})
            found = []
            page.on("console", lambda message, found=found: found.append(f"console {message.type}: {message.text}")
                    if message.type == "error" else None)
            page.on("pageerror", lambda error, found=found: found.append(f"page error: {error}"))
            page.on("requestfailed", lambda request, found=found: found.append(f"request failed: {request.url}"))
            page.goto(html.resolve().as_uri())
            page.wait_for_load_state("load")
            broken = page.evaluate("Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0)"
                                   ".map(i => i.alt || i.src.slice(0, 60))")
            found += [f"broken image: {alt}" for alt in broken]
            page.screenshot(path=str(out_dir / f"{html.stem}.png"), full_page=True)
            if thumbnail:
                page.set_viewport_size({"width": width, "height": thumbnail})
                page.screenshot(path=str(out_dir / f"{html.stem}_first_screen.png"))
            problems[html.name] = found
            page.close()
        browser.close()
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output_dir", type=Path)
    parser.add_argument("screenshot_dir", type=Path)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--thumbnail", type=int, default=None, metavar="HEIGHT",
                        help="also save the first HEIGHT pixels of each report")
    args = parser.parse_args()
    reports = sorted(args.output_dir.glob("*.html"))
    if not reports:
        sys.exit(f"no report (*.html) in {args.output_dir}")
    problems = render(reports, args.screenshot_dir, args.width, args.thumbnail)
    for name, found in problems.items():
        print(f"{name}: {'ok' if not found else '; '.join(found)}")
    return 1 if any(problems.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
