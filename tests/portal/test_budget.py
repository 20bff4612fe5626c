"""A Lighthouse-style page-weight budget without the tool: the home page of the demo adult
(the richest home of the demo world) weighs at most 100 KB gzip-compressed, counting its HTML
and every stylesheet and script it loads (link rel=stylesheet, script src, the service
worker's and manifest's files are not loaded by the page itself).

Images are counted apart and budgeted too: the trend chart (a server-drawn SVG <img>) and any
other same-origin image, so that a heavy chart cannot hide outside the figure.

Each resource is compressed alone with gzip level 6 (what a reverse proxy does; the app itself
compresses only JSON). The time budget (≤ 2x the JSON summary's) is measured by bench/portal.py,
not here: a timing is no test on a shared machine.
"""

from __future__ import annotations

import gzip
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

BUDGET_BYTES = 100 * 1024
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


class _Resources(HTMLParser):
    """The page's stylesheets, scripts and images (same-origin paths)."""

    def __init__(self) -> None:
        super().__init__()
        self.styles: list[str] = []
        self.scripts: list[str] = []
        self.images: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "link" and "stylesheet" in (found.get("rel") or "").split() and found.get(
                "href"):
            self.styles.append(str(found["href"]))
        elif tag == "script" and found.get("src"):
            self.scripts.append(str(found["src"]))
        elif tag == "img" and found.get("src") and not str(found["src"]).startswith("data:"):
            self.images.append(str(found["src"]))


def compressed_size(data: bytes) -> int:
    return len(gzip.compress(data, compresslevel=6, mtime=0))


def _fetch(client: Any, url: str) -> bytes:
    parts = urlsplit(url)
    assert not parts.netloc or parts.netloc in ("localhost", "127.0.0.1"), \
        f"a third-party load: {url}"
    answer = client.get(parts.path, query_string=parts.query, headers={"Accept": "*/*"})
    try:
        assert answer.status_code == 200, (url, answer.status_code)
        data = answer.get_data()
    finally:
        answer.close()  # a static file is streamed from an open file
    if answer.headers.get("Content-Encoding") == "gzip":
        data = gzip.decompress(data)
    return data


def _weigh(client: Any, path: str) -> dict[str, Any]:
    page = client.get(path, headers=BROWSER)
    assert page.status_code == 200, page.get_data(as_text=True)[:500]
    html = page.get_data()
    resources = _Resources()
    resources.feed(html.decode("utf-8"))
    sizes = {"html": compressed_size(html)}
    for kind in ("styles", "scripts", "images"):
        for url in getattr(resources, kind):
            sizes[url] = compressed_size(_fetch(client, url))
    code = sizes["html"] + sum(sizes[u] for u in resources.styles + resources.scripts)
    images = sum(sizes[u] for u in resources.images)
    return {"sizes": sizes, "code": code, "images": images, "resources": resources,
            "raw_html": len(html)}


def test_the_home_page_weighs_at_most_100_kb_compressed(client, demo, login_as):
    who = login_as("adult-chronic")
    for path in ("/", f"/people/{who['id']}"):
        weight = _weigh(client, path)
        print(f"{path}: {weight['sizes']} -> HTML+CSS+JS {weight['code']} B, images "
              f"{weight['images']} B (gzip)")
        assert weight["resources"].styles, "the page loads its stylesheet"
        assert weight["code"] <= BUDGET_BYTES, weight["sizes"]
        assert weight["code"] + weight["images"] <= BUDGET_BYTES, weight["sizes"]


def test_the_parents_home_with_a_child_fits_too(client, demo, login_as):
    login_as("parent")
    weight = _weigh(client, "/")
    assert weight["code"] + weight["images"] <= BUDGET_BYTES, weight["sizes"]
