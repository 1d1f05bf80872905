"""Mail HTML made safe to show (nh3), and readable plain text made from HTML."""

from __future__ import annotations

import functools
import html
import re
from html.parser import HTMLParser

import nh3

MAX_HTML_CHARS = 1_000_000  # beyond this the HTML is dropped and only text kept
# Elements nested deeper than this lose their tags (their text stays), as in
# Chromium's HTML parser, which stops nesting at 512. The cleaner's parser
# takes time in the square of the depth: 20,000 nested <div>s cost 0.75 s of
# CPU, the same markup flattened at 512 about 30 ms.
MAX_HTML_DEPTH = 512
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9:-]*)[^>]*>")
# Tags that never nest: void elements, and those a sibling closes implicitly
# (a <p> after a <p>), so that old mail with unclosed paragraphs keeps them.
_NOT_NESTING = {
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
    "source", "track", "wbr", "p", "li", "dt", "dd", "tr", "td", "th", "option",
    "optgroup", "tbody", "thead", "tfoot", "colgroup", "caption", "rb", "rt", "rp",
}  # fmt: skip

_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "center", "code", "col", "colgroup",
    "dd", "del", "div", "dl", "dt", "em", "font", "h1", "h2", "h3", "h4", "h5", "h6", "hr",
    "i", "img", "ins", "kbd", "li", "ol", "p", "pre", "q", "s", "small", "span", "strike",
    "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "tt", "u",
    "ul",
}  # fmt: skip
_ATTRIBUTES = {
    "*": {"align", "dir", "lang", "title", "valign"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan", "width"},
    "th": {"colspan", "rowspan", "width", "scope"},
    "table": {"border", "cellpadding", "cellspacing", "width"},
    "col": {"span", "width"},
    "ol": {"start", "type"},
    "font": {"color", "face", "size"},
}
# Content that is never shown, removed with its tags (everything else unknown
# loses its tags but keeps its text).
_DROP_WITH_CONTENT = {
    "script", "style", "title", "head", "noscript", "template", "iframe", "object",
    "embed", "applet", "svg", "math", "frameset", "noembed", "noframes", "xmp", "textarea",
    "select", "button",
}  # fmt: skip
_HREF_SCHEMES = ("http:", "https:", "mailto:")
# Remote images stay: the console's CSP blocks them until the agent asks.
_SRC_SCHEMES = ("http:", "https:", "cid:", "data:image/")
_NO_SCRIPT_IMAGES = ("data:image/svg",)


def _filter_attribute(tag: str, attribute: str, value: str) -> str | None:
    if attribute == "href":
        return value if value.strip().lower().startswith(_HREF_SCHEMES) else None
    if attribute == "src":
        lowered = value.strip().lower()
        if lowered.startswith(_SRC_SCHEMES) and not lowered.startswith(_NO_SCRIPT_IMAGES):
            return value
        return None
    return value


_CLEANER = nh3.Cleaner(
    tags=_TAGS,
    clean_content_tags=_DROP_WITH_CONTENT,
    attributes=_ATTRIBUTES,
    attribute_filter=_filter_attribute,
    url_schemes={"http", "https", "mailto", "cid", "data"},
    link_rel="noopener noreferrer",
    strip_comments=True,
)


@functools.lru_cache(maxsize=4)  # the same body is flattened for the HTML and the text
def limit_nesting(markup: str, depth: int = MAX_HTML_DEPTH) -> str:
    """`markup` with the tags of elements nested deeper than `depth` removed
    (their content kept). Linear; markup with fewer tags than `depth` is
    returned as it is. Not a sanitizer: the cleaner still reads the result."""
    if markup.count("<") <= depth:
        return markup
    kept: list[str] = []
    level = start = 0
    for tag in _TAG.finditer(markup):
        if tag.group(2).lower() in _NOT_NESTING:
            continue
        closing = tag.group(1) == "/"
        too_deep = level >= depth if not closing else level > depth
        level = max(0, level - 1) if closing else level + 1
        if too_deep:
            kept.append(markup[start : tag.start()])
            start = tag.end()
    if not kept:
        return markup
    kept.append(markup[start:])
    return "".join(kept)


def sanitize_html(markup: str) -> str | None:
    """Sanitized HTML, or None when the markup is too large to keep; nesting
    beyond `MAX_HTML_DEPTH` is flattened first."""
    if len(markup) > MAX_HTML_CHARS:
        return None
    cleaned = _CLEANER.clean(limit_nesting(markup)).strip()
    return cleaned if len(cleaned) <= MAX_HTML_CHARS else None


_BLOCK = {
    "address", "article", "aside", "blockquote", "center", "dd", "div", "dl", "dt",
    "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5",
    "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "table", "tr",
    "ul",
}  # fmt: skip
_PARAGRAPH = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "blockquote"}
_INVISIBLE = {"script", "style", "head", "title", "template", "noscript", "svg", "object"}
_SPACES = re.compile(r"[ \t\r\n\f\u00a0]+")


class _TextExtractor(HTMLParser):
    """Collects text with line breaks where the layout has them; blockquotes
    become `> ` lines so quote folding works on HTML-only replies too."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.current: list[str] = []
        self.hidden = 0
        self.quote_depth = 0
        self.pre = 0

    def _break(self, blank: bool = False, hard: bool = False) -> None:
        """End the current line. `hard` (a <br>) may leave an empty line; `blank`
        (a paragraph) ensures one empty line after it."""
        line = "".join(self.current)
        if not self.pre:
            line = line.strip(" ")
        self.current = []
        prefix = ">" * self.quote_depth
        if line:
            self.lines.append(f"{prefix} {line}" if prefix else line)
        elif hard and (not self.lines or self.lines[-1] != prefix):
            self.lines.append(prefix)
        if blank and self.lines and self.lines[-1] != prefix:
            self.lines.append(prefix)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _INVISIBLE:
            self.hidden += 1
        elif tag == "br":
            self._break(hard=True)
        elif tag in _BLOCK:
            self._break(blank=tag in _PARAGRAPH)
            if tag == "blockquote":
                self.quote_depth += 1
            elif tag == "li":
                self.current.append("- ")
            elif tag == "pre":
                self.pre += 1
        elif tag in ("td", "th") and self.current:
            self.current.append("\t")
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt and not self.hidden:
                self.current.append(f"[{alt.strip()}]")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _INVISIBLE:
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in _INVISIBLE:
            self.hidden = max(0, self.hidden - 1)
        elif tag in _BLOCK:
            self._break(blank=tag in _PARAGRAPH)
            if tag == "blockquote":
                self.quote_depth = max(0, self.quote_depth - 1)
            elif tag == "pre":
                self.pre = max(0, self.pre - 1)

    def handle_data(self, data: str) -> None:
        if self.hidden:
            return
        if self.pre:
            for i, part in enumerate(data.replace("\r\n", "\n").split("\n")):
                if i:
                    self._break(hard=True)
                self.current.append(part)
        else:
            self.current.append(_SPACES.sub(" ", data))


def html_to_text(markup: str) -> str:
    """Readable plain text from HTML: tags stripped, entities decoded, line breaks
    kept for <br>, paragraphs, divs, list items and table rows. Nesting beyond
    `MAX_HTML_DEPTH` is flattened first, as for `sanitize_html`."""
    extractor = _TextExtractor()
    try:
        extractor.feed(limit_nesting(markup))
        extractor.close()
    except (AssertionError, ValueError):  # the parser's own errors on broken markup
        return html.unescape(re.sub(r"<[^>]*>", " ", markup))
    extractor._break()
    return "\n".join(extractor.lines).strip("\n")
