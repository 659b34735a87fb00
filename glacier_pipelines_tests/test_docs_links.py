"""The documentation's links: every relative link of README.md, docs/ and bench/README.md resolves, none
leaves the repository, and every docs/ page is reachable from the README, so moving text cannot strand a reader."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "bench" / "README.md"]
LINK = re.compile(r"\]\(([^)\s]+)\)")
PARENT_PATH = re.compile(r"(?<![\w./])((?:\.\./)+[\w.\-/]*)")  # ../x, ../../y/z, in links or in prose


def anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens (code blocks skipped)."""
    found, fenced = set(), False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and (m := re.match(r"^#{1,6} +(.+?) *$", line)):
            found.add(re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-"))
    return found


def _relative_links(page: Path) -> list[str]:
    """The page's link targets that name a file or an anchor (http(s) and mailto: are not checked offline)."""
    return [t for t in LINK.findall(page.read_text()) if not re.match(r"[a-z]+:", t)]


def test_the_pages_are_there():
    assert len(PAGES) > 6 and all(page.exists() for page in PAGES)


def test_every_relative_link_of_the_readme_and_docs_resolves():
    """Files and heading anchors named by README.md, docs/*.md and bench/README.md exist."""
    dead = []
    for page in PAGES:
        for target in _relative_links(page):
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                dead.append(f"{page.relative_to(ROOT)}: {target}")
            elif anchor and file.suffix == ".md" and anchor not in anchors(file.read_text()):
                dead.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not dead, dead


def test_no_link_or_path_points_outside_the_repository():
    """A reader of a clone has only the repository: no absolute link, no ../ that climbs out of it."""
    outside = []
    for page in PAGES:
        text = page.read_text()
        outside += [f"{page.relative_to(ROOT)}: {t}" for t in _relative_links(page) if t.startswith("/")]
        for path in PARENT_PATH.findall(text):
            if not (page.parent / path).resolve().is_relative_to(ROOT):
                outside.append(f"{page.relative_to(ROOT)}: {path}")
    assert not outside, outside


def test_every_docs_page_is_linked_from_the_readme():
    """The README is the map: a page it does not name is a page a newcomer never finds."""
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in _relative_links(ROOT / "README.md") if t.partition("#")[0]}
    missing = [p.name for p in sorted((ROOT / "docs").glob("*.md")) if p.resolve() not in linked]
    assert not missing, missing


def test_the_checks_catch_what_they_are_for(tmp_path):
    """The patterns find a climbing path in prose and a link, and the anchors follow GitHub's rule."""
    assert PARENT_PATH.findall("see ../shared/DESIGN.md and [x](../../y.md)") == ["../shared/DESIGN.md", "../../y.md"]
    assert not (ROOT / "docs" / "../../shared/DESIGN.md").resolve().is_relative_to(ROOT)
    assert anchors("# Exit statuses\n```\n# not a heading\n```\n## Large files skip staging (measured)\n") == {
        "exit-statuses",
        "large-files-skip-staging-measured",
    }
