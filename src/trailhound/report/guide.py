"""Investigation guides (a rule's `note`, Markdown) as HTML that cannot carry script.

markdown-it-py (CommonMark; it comes with rich) with raw HTML disabled, so `<script>` in a
guide is text; links only to http(s) and mailto (markdown-it already refuses `javascript:`,
`vbscript:`, `file:` and most `data:`; we refuse everything else too), opened without a referrer;
images off, since a report must fetch nothing.
"""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlsplit

SAFE_SCHEMES = ("http", "https", "mailto")


def safe_url(url: str) -> bool:
    """True for an absolute http(s) or mailto URL without control characters."""
    if any(ord(c) < 0x21 or c in "\x7f\\" for c in url):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme.lower() in SAFE_SCHEMES and (parts.scheme.lower() == "mailto" or bool(parts.netloc))


@lru_cache(maxsize=1)
def _markdown():
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.disable(["image", "html_inline", "html_block"])
    md.validateLink = safe_url  # type: ignore[method-assign]

    def link_open(renderer, tokens, idx, options, env):
        tokens[idx].attrSet("rel", "noopener noreferrer nofollow")
        return renderer.renderToken(tokens, idx, options, env)

    md.add_render_rule("link_open", link_open)
    return md


def render_guide(text: str) -> str:
    """Sanitized HTML of a guide: only the markup CommonMark produces from text."""
    return _markdown().render(text)
