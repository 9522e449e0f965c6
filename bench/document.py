"""A report as plain blocks (headings, paragraphs, tables, figures), rendered to Markdown or self-contained HTML.

The HTML has inline CSS and figures as data URIs: nothing is fetched when it is opened. Text from records is
escaped in both: shown, never run (bench.report writes the files, as one folder swapped in whole).
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field

from tabulate import tabulate


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2  # 1 is the title

    @property
    def anchor(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.text.lower()).strip("-")


@dataclass(frozen=True)
class Para:
    text: str  # inline **bold** and `code` are rendered in both formats
    style: str = ""  # "" | lead | note | verdict-holds | verdict-fails | verdict-mixed | ...


@dataclass(frozen=True)
class Bullets:
    items: list[str]


@dataclass(frozen=True)
class Cell:
    """A table cell with a style class in HTML (e.g. the claim's outcome); plain text in Markdown."""

    text: str
    style: str = ""


@dataclass(frozen=True)
class Table:
    headers: list[str]
    rows: list[list]  # str or Cell
    caption: str = ""
    numeric: tuple[int, ...] = ()  # right-aligned column indices


@dataclass(frozen=True)
class Image:
    filename: str  # written beside report.md
    png: bytes
    caption: str


@dataclass(frozen=True)
class Document:
    title: str
    blocks: list = field(default_factory=list)

    @property
    def images(self) -> list[Image]:
        return [b for b in self.blocks if isinstance(b, Image)]


def _plain(cell) -> str:
    return cell.text if isinstance(cell, Cell) else str(cell)


def to_markdown(doc: Document) -> str:
    out = [f"# {markdown_text(doc.title)}", ""]
    for b in doc.blocks:
        if isinstance(b, Heading):
            out += ["#" * b.level + " " + markdown_text(b.text), ""]
        elif isinstance(b, Para):
            out += [f"> {markdown_text(b.text)}" if b.style.startswith("verdict") else markdown_text(b.text), ""]
        elif isinstance(b, Bullets):
            out += [f"- {markdown_text(item)}" for item in b.items] + [""]
        elif isinstance(b, Table):
            if b.caption:
                out += [f"*{markdown_text(b.caption)}*", ""]
            rows = [[_md_cell(_plain(c)) for c in r] for r in b.rows]
            align = ["right" if i in b.numeric else "left" for i in range(len(b.headers))]
            out += [tabulate(rows, headers=[_md_cell(h) for h in b.headers], tablefmt="github",
                             disable_numparse=True, colalign=align), ""]
        elif isinstance(b, Image):
            out += [f"![{markdown_text(b.caption)}]({b.filename})", "", f"*{markdown_text(b.caption)}*", ""]
    return "\n".join(out).rstrip() + "\n"


_CODE = re.compile(r"(`[^`]+`)")


def markdown_text(text) -> str:
    """Inline text for Markdown, where it may hold text from records (a host name, a message): one line, and
    outside `code` spans every "<" and "](" escaped, so <script> or <img onerror=...> is shown, never run, and
    no record can open a link or start a line of its own (a heading, a table row). **bold** and `code` stay."""
    parts = _CODE.split(" ".join(str(text).splitlines()))
    return "".join(part if i % 2 else part.replace("<", "&lt;").replace("](", "]\\(")
                   for i, part in enumerate(parts))


def _md_cell(text) -> str:
    return markdown_text(text).replace("|", "\\|")  # a bar would end the cell


def inline(text: str) -> str:
    """Escape, then render **bold** and `code`."""
    text = html.escape(text, quote=True)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)


def _table_html(b: Table) -> str:
    def cell(tag: str, c, i: int) -> str:
        classes = ["num"] if i in b.numeric else []
        if isinstance(c, Cell) and c.style:
            classes.append(c.style)
        attr = f' class="{" ".join(classes)}"' if classes else ""
        return f"<{tag}{attr}>{inline(_plain(c))}</{tag}>"

    head = "".join(cell("th", h, i) for i, h in enumerate(b.headers))
    body = "\n".join("<tr>" + "".join(cell("td", c, i) for i, c in enumerate(r)) + "</tr>" for r in b.rows)
    # the caption sits above the scrolling box, so a wide table never cuts it off mid-sentence
    caption = f'<p class="caption">{inline(b.caption)}</p>' if b.caption else ""
    return (f'{caption}<div class="scroll"><table><thead><tr>{head}</tr></thead>\n'
            f"<tbody>\n{body}\n</tbody></table></div>")


def to_html(doc: Document, subtitle: str = "") -> str:
    parts, toc = [], []
    for b in doc.blocks:
        if isinstance(b, Heading):
            if b.level == 2:
                toc.append(f'<a href="#{b.anchor}">{html.escape(b.text)}</a>')
            parts.append(f'<h{b.level} id="{b.anchor}">{inline(b.text)}</h{b.level}>')
        elif isinstance(b, Para):
            cls = f' class="{b.style}"' if b.style else ""
            parts.append(f"<p{cls}>{inline(b.text)}</p>")
        elif isinstance(b, Bullets):
            parts.append("<ul>" + "".join(f"<li>{inline(i)}</li>" for i in b.items) + "</ul>")
        elif isinstance(b, Table):
            parts.append(_table_html(b))
        elif isinstance(b, Image):
            data = base64.b64encode(b.png).decode("ascii")
            parts.append(f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(b.caption)}">'
                         f"<figcaption>{inline(b.caption)}</figcaption></figure>")
    nav = f'<nav>{" ".join(toc)}</nav>' if toc else ""
    sub = f'<p class="subtitle">{inline(subtitle)}</p>' if subtitle else ""
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(doc.title)}</title><style>{CSS}</style></head>\n"
            f"<body><main><h1>{inline(doc.title)}</h1>{sub}{nav}\n" + "\n".join(parts) + "\n</main></body></html>\n")


CSS = """
:root { --ink: #1d232b; --muted: #5b6572; --line: #dde2e8; --bg: #ffffff; --soft: #f5f7fa;
  --good: #1a7f37; --good-bg: #e9f6ec; --bad: #b42318; --bad-bg: #fdecea; --warn: #9a6700; --warn-bg: #fff6dd;
  --accent: #1f5fa8; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--soft); color: var(--ink);
  font: 16px/1.55 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "DejaVu Sans", sans-serif; }
main { max-width: 1240px; margin: 0 auto; padding: 2rem 2.5rem 4rem; background: var(--bg);
  box-shadow: 0 0 0 1px var(--line); min-height: 100vh; }
h1 { font-size: 1.75rem; line-height: 1.25; margin: 0 0 .4rem; }
h2 { font-size: 1.3rem; margin: 2.6rem 0 .8rem; padding-bottom: .3rem; border-bottom: 2px solid var(--line); }
h3 { font-size: 1.05rem; margin: 1.6rem 0 .5rem; }
p { margin: .6rem 0; }
.subtitle { color: var(--muted); margin-bottom: 1rem; }
nav { display: flex; flex-wrap: wrap; gap: .35rem .5rem; padding: .7rem 0 1rem; border-bottom: 1px solid var(--line); }
nav a { color: var(--accent); text-decoration: none; font-size: .9rem; padding: .15rem .55rem;
  border: 1px solid var(--line); border-radius: 999px; background: var(--soft); }
nav a:hover { background: #e8eef6; }
.lead { font-size: 1.08rem; }
.note { color: var(--muted); font-size: .92rem; }
p[class^="verdict"] { padding: .7rem 1rem; border-left: 5px solid; border-radius: 4px; }
.verdict-holds { border-color: var(--good); background: var(--good-bg); }
.verdict-fails { border-color: var(--bad); background: var(--bad-bg); }
.verdict-mixed, .verdict-inconclusive { border-color: var(--warn); background: var(--warn-bg); }
.verdict-none { border-color: var(--muted); background: var(--soft); }
ul { padding-left: 1.3rem; } li { margin: .25rem 0; }
code { font: .88em/1.4 ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", monospace;
  background: var(--soft); padding: .08em .35em; border-radius: 4px; border: 1px solid var(--line); }
.scroll { overflow-x: auto; margin: .8rem 0 1.2rem; }
table { border-collapse: collapse; font-size: .87rem; min-width: 60%; }
.caption { color: var(--muted); margin: 1rem 0 -.4rem; font-size: .9rem; }
th, td { padding: .35rem .7rem; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top;
  white-space: nowrap; }
th { background: var(--soft); font-weight: 600; white-space: nowrap; }
tbody tr:hover { background: #fafbfd; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.holds { color: var(--good); font-weight: 600; }
td.fails { color: var(--bad); font-weight: 600; }
td.inconclusive, td.bad-status { color: var(--warn); font-weight: 600; }
td.wrap { white-space: normal; min-width: 16rem; max-width: 30rem; font-weight: normal; color: var(--ink); }
td.wrap.holds strong { color: var(--good); } td.wrap.fails strong { color: var(--bad); }
td.wrap.inconclusive strong, td.wrap.mixed strong { color: var(--warn); }
figure { margin: 1.2rem 0 1.8rem; }
figure img { display: block; max-width: 100%; height: auto; margin: 0 auto; }
figcaption { color: var(--muted); font-size: .9rem; margin-top: .4rem; text-align: center; }
@media print { body { background: #fff; } main { box-shadow: none; } nav { display: none; } }
"""
