"""Check every relative link of the built site: ``python docs/_gen/check_links.py [site]``.

Parses every ``site/**/*.html`` and checks that each relative ``href``/``src`` resolves to a
file of the site and, when it has a ``#fragment``, that the target page has an element with
that id. External links (``http:``, ``https:``, ``mailto:``, ...) are not fetched: the build
machine is offline. Exits 1 and lists the broken links when there are any.
"""

from __future__ import annotations

import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

_SKIP_SCHEMES = ("http", "https", "mailto", "data", "javascript", "tel", "ftp")


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name in ("id", "name"):
                self.ids.add(value)
            elif name in ("href", "src") and tag != "base":
                self.links.append(value)


def _parse(path: Path, cache: dict[Path, _Page]) -> _Page:
    if path not in cache:
        page = _Page()
        page.feed(path.read_text(errors="replace"))
        cache[path] = page
    return cache[path]


def check_site(site: Path) -> tuple[int, list[str]]:
    """(number of links checked, list of broken ones as 'page: link (reason)')."""
    site = site.resolve()
    cache: dict[Path, _Page] = {}
    broken: list[str] = []
    checked = 0
    for html in sorted(site.rglob("*.html")):
        page = _parse(html, cache)
        for link in page.links:
            parts = urlsplit(link)
            if parts.scheme in _SKIP_SCHEMES or link.startswith("//"):
                continue
            checked += 1
            where = f"{html.relative_to(site)}: {link}"
            if parts.path:
                target = (site / parts.path.lstrip("/")) if parts.path.startswith("/") \
                    else (html.parent / unquote(parts.path))
                target = target.resolve()
                if target.is_dir():
                    target = target / "index.html"
                if not target.exists():
                    broken.append(f"{where} (no such file)")
                    continue
                if site not in target.parents and target != site:
                    broken.append(f"{where} (outside the site)")
                    continue
            else:
                target = html
            frag = unquote(parts.fragment)
            if frag and target.suffix == ".html" and frag not in _parse(target, cache).ids:
                broken.append(f"{where} (no anchor #{frag})")
    return checked, broken


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    site = Path(args[0] if args else "site")
    if not site.is_dir():
        print(f"check_links: {site} is not a directory; build the site first (make docs)")
        return 2
    checked, broken = check_site(site)
    pages = sum(1 for _ in site.rglob("*.html"))
    for b in broken:
        print(f"broken link: {b}")
    print(f"check_links: {checked} relative links on {pages} pages, {len(broken)} broken")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
