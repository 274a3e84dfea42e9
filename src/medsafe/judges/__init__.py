"""LLM judges: rubric prompts with fenced data, tolerant reply parsing, the judge-call client,
injection flags, the jury of N judges and their agreement.

- :mod:`medsafe.judges.base` -- the judged-scorer machinery (units, per-judge scores, jury).
- :mod:`medsafe.judges.build` -- judges from a scorer config or ``--judge``;
  :func:`~medsafe.judges.build.build_judged_scorer` for calibration.
- :mod:`medsafe.judges.client` -- one judge model with bounded transport and parse retries.
- :mod:`medsafe.judges.parse` -- JSON and ``#reason/#score`` replies; never guesses.
- :mod:`medsafe.judges.fence`, :mod:`medsafe.judges.injection` -- untrusted text handling.
- agreement and per-scorer figures live in :mod:`medsafe.results` (``results --json``).

The scorers themselves live in :mod:`medsafe.scorers` (``harmfulness``, ``medes``, ``rubric``,
``safety``). Rubrics, formulas and sources: docs/judges.md.
"""
