"""Reports and paired comparisons of stored runs (``medsafe report``, ``medsafe compare``).

- :mod:`medsafe.report.data` -- SQL aggregates of one run (GROUP BY, never all transcripts).
- :mod:`medsafe.report.compare` -- paired tests of two runs on the same items.
- :mod:`medsafe.report.plots` -- matplotlib figures as inline SVG (CJK-capable).
- :mod:`medsafe.report.render` -- the view model and the Jinja2 HTML (autoescaped).
- :mod:`medsafe.report.pdf` -- the same HTML as PDF (WeasyPrint).

This package imports nothing heavy itself, so the CLI can register its commands cheaply.
"""
