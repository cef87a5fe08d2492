#!/usr/bin/env python3
"""Checks the Faultline dashboard in headless Chromium.

Usage: check_dashboard.py URL KEY OUT.png [--range 1h|6h|24h] [--timeout SECONDS] [--min-series N]
                          [--allow-console]

Opens URL with the key in the fragment (URL#key=KEY), lets the page run for a virtual 10 s,
dumps the DOM and reads the chart element (id="error-rate-chart"):
  data-chart-ready  "true" once the chart is drawn with at least one series
  data-series       series drawn
  data-spikes       spike markers drawn
Then saves a 1280x1600 screenshot to OUT.png. Exits 0 when the chart is ready with at least
--min-series series (default 1) and the page wrote nothing to the console; 1 otherwise;
2 on a usage or environment problem. Prints one JSON line with what it found.
"""

import argparse
import html.parser
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from urllib.parse import quote, urldefrag

CHART_ID = "error-rate-chart"


class ChartFinder(html.parser.HTMLParser):
    """Collects the chart element's attributes and the page's data-state."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.chart = None
        self.state = None
        self.banner = []
        self._in_banner = 0

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if attributes.get("id") == CHART_ID and self.chart is None:
            self.chart = attributes
        if tag == "main" and "data-state" in attributes:
            self.state = attributes["data-state"]
        if attributes.get("id") == "banner":
            self._in_banner = 1
        elif self._in_banner:
            self._in_banner += 1

    def handle_endtag(self, tag):
        if self._in_banner:
            self._in_banner -= 1

    def handle_data(self, data):
        if self._in_banner and data.strip():
            self.banner.append(data.strip())


def find_chromium():
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def run_chromium(binary, url, mode_args, timeout):
    """Runs one headless Chromium in a throwaway profile; returns (stdout, console lines)."""
    with tempfile.TemporaryDirectory(prefix="faultline-check-") as profile:
        command = [
            binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
            "--disable-extensions", "--disable-background-networking", "--window-size=1280,1600",
            "--virtual-time-budget=10000", "--enable-logging=stderr", "--v=0", "--user-data-dir=" + profile,
        ] + mode_args + [url]
        completed = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        stderr = completed.stderr.decode("utf-8", "replace")
        console = [line for line in stderr.splitlines() if ":CONSOLE" in line]
        if completed.returncode != 0:
            raise RuntimeError("chromium exited with %d: %s" % (completed.returncode, stderr.strip()[-500:]))
        return completed.stdout.decode("utf-8", "replace"), console


def main():
    parser = argparse.ArgumentParser(description="Check the Faultline dashboard in headless Chromium.")
    parser.add_argument("url", help="the dashboard, e.g. http://127.0.0.1:8080/")
    parser.add_argument("key", help="an API key with the read scope")
    parser.add_argument("out", help="where to save the screenshot (PNG)")
    parser.add_argument("--range", choices=["1h", "6h", "24h"], default=None, help="time range to show")
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds allowed for each Chromium run")
    parser.add_argument("--min-series", type=int, default=1, help="series the chart must draw (default 1)")
    parser.add_argument("--allow-console", action="store_true", help="do not fail on console output")
    args = parser.parse_args()

    binary = find_chromium()
    if binary is None:
        print(json.dumps({"ok": False, "error": "no chromium found (set CHROMIUM or apt-get install -y chromium)"}))
        return 2

    base, _ = urldefrag(args.url)
    fragment = "key=" + quote(args.key, safe="")
    if args.range:
        fragment += "&range=" + args.range
    url = base + "#" + fragment

    started = time.monotonic()
    try:
        dom, console = run_chromium(binary, url, ["--dump-dom"], args.timeout)
    except (subprocess.TimeoutExpired, RuntimeError) as error:
        print(json.dumps({"ok": False, "error": "dump-dom failed: %s" % error}))
        return 1
    finder = ChartFinder()
    finder.feed(dom)
    chart = finder.chart or {}
    ready = chart.get("data-chart-ready")
    try:
        series = int(chart.get("data-series", "0"))
        spikes = int(chart.get("data-spikes", "0"))
    except ValueError:
        series, spikes = 0, 0

    shot_error = None
    out = os.path.abspath(args.out)
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    try:
        _, shot_console = run_chromium(binary, url, ["--screenshot=" + out], args.timeout)
        console += shot_console
        if not os.path.exists(out) or os.path.getsize(out) == 0:
            shot_error = "no screenshot was written"
    except (subprocess.TimeoutExpired, RuntimeError) as error:
        shot_error = str(error)

    problems = []
    if finder.chart is None:
        problems.append("no element with id=%s (is URL the dashboard?)" % CHART_ID)
    elif ready != "true":
        problems.append("data-chart-ready is %r, not 'true'" % ready)
    if series < args.min_series:
        problems.append("data-series is %d, fewer than %d" % (series, args.min_series))
    if console and not args.allow_console:
        problems.append("the page wrote %d console line(s)" % len(console))
    if shot_error:
        problems.append("screenshot: " + shot_error)

    report = {
        "ok": not problems, "url": base, "chart_ready": ready, "series": series, "spikes": spikes,
        "range": chart.get("data-range"), "step": chart.get("data-step"), "page_state": finder.state,
        "banner": " ".join(finder.banner) or None, "console": console[:10], "screenshot": out,
        "seconds": round(time.monotonic() - started, 1), "problems": problems,
    }
    print(json.dumps(report))
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
