"""The report as PDF: the same HTML laid out for A4 by WeasyPrint (CJK via Noto Sans CJK)."""

from __future__ import annotations

import logging
from pathlib import Path


def write_pdf(html: str, path: Path) -> int:
    """Write ``html`` as a PDF at ``path`` (via a temporary file); returns the page count.

    Only ``data:`` URLs are fetched, so rendering never touches the network or local files.
    """
    import weasyprint

    logging.getLogger("fontTools").setLevel(logging.WARNING)
    fetcher = weasyprint.URLFetcher(allowed_protocols=["data"], fail_on_errors=True)
    document = weasyprint.HTML(string=html, url_fetcher=fetcher).render()
    tmp = path.with_name(path.name + ".part")
    document.write_pdf(tmp)
    tmp.replace(path)
    return len(document.pages)
