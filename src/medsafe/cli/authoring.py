"""``medsafe corpus``, ``medsafe generate`` and ``medsafe curate``: authoring benchmarks from
normative documents and curating chain-of-thought rationales (docs/authoring.md)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from medsafe.cli.dboption import db_location
from medsafe.errors import MedsafeError
from medsafe.exits import ExitCode, fail
from medsafe.formatting import emit_json

if TYPE_CHECKING:
    from medsafe.authoring.curate import CurateOutcome

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

corpus_app = typer.Typer(
    help="Normative corpora: import documents into a store.", no_args_is_help=True
)
generate_app = typer.Typer(
    help="Generate rules and items (open, multi-select MCQ, red-team seeds) from a corpus, "
    "validate, deduplicate and write a versioned release; 'generate diff OLD NEW' compares two.",
    invoke_without_command=True,
)

PhiOption = Annotated[
    str | None,
    typer.Option(
        "--phi-check",
        help="off, warn or block: prompts with personal identifiers and a non-loopback "
        "endpoint (default: block when an endpoint is remote), as medsafe run.",
    ),
]
AllowPhiOption = Annotated[
    bool,
    typer.Option(
        "--allow-phi", help="Send prompts with identifiers to a remote endpoint anyway (recorded)."
    ),
]
DbOption = Annotated[
    Path,
    typer.Option(
        "--db",
        help="Results store (SQLite file or postgresql:// URL) holding corpora.",
        callback=db_location,
    ),
]


@corpus_app.command("add")
def corpus_add(
    path: Annotated[
        Path,
        typer.Argument(
            help="A document (txt, md, html, pdf, docx), a folder of them, "
            "or @sample for the bundled sample corpus."
        ),
    ],
    corpus: Annotated[str, typer.Option("--corpus", help="Corpus name (letters, digits, -_.).")],
    db: DbOption = Path("medsafe.db"),
    title: Annotated[
        str | None, typer.Option(help="Document title (default: front matter or file name).")
    ] = None,
    issuer: Annotated[str | None, typer.Option(help="Issuing body.")] = None,
    jurisdiction: Annotated[str | None, typer.Option(help="Jurisdiction (e.g. CN, JP).")] = None,
    language: Annotated[
        str | None, typer.Option(help="zh, ja or en (default: front matter, else guessed).")
    ] = None,
    date: Annotated[str | None, typer.Option(help="Date of the document's version.")] = None,
    license_: Annotated[str | None, typer.Option("--license", help="Licence (SPDX id).")] = None,
    url: Annotated[str | None, typer.Option(help="Where the document is published.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (every section ref).")
    ] = False,
) -> None:
    """Import documents, split into numbered sections with content hashes; a re-import of the
    same PATH says how many sections were added, changed and removed (only under PATH).
    Metadata options override the files' own and apply to every document imported."""
    from medsafe.authoring.corpus import import_documents, read_path
    from medsafe.store.sqlite import Store

    given = {
        "title": title,
        "issuer": issuer,
        "jurisdiction": jurisdiction,
        "language": language,
        "date": date,
        "license": license_,
        "url": url,
    }
    try:
        read = read_path(corpus, path, {k: v for k, v in given.items() if v})  # before the store
        with Store(db) as store:
            report = import_documents(store.connection, read)
    except MedsafeError as exc:
        raise fail(exc) from None
    if as_json:
        emit_json(
            {
                "corpus": corpus,
                "documents": report.documents,
                "added": report.added,
                "changed": report.changed,
                "removed": report.removed,
                "unchanged": report.unchanged,
            }
        )
        return
    out.print(f"corpus {corpus}: {report.summary()}", markup=False)
    for word, refs in (("changed", report.changed), ("removed", report.removed)):
        for ref in refs:
            out.print(f"  {word}: {ref}", markup=False)


@corpus_app.command("list")
def corpus_list(
    corpus: Annotated[str, typer.Argument(help="Corpus name.")],
    db: DbOption = Path("medsafe.db"),
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List a corpus's sections: ref, number, chapter, length and hash."""
    from medsafe.authoring.corpus import corpus_hash, load_sections, require_store
    from medsafe.store.sqlite import Store

    try:
        require_store(db)
        with Store(db) as store:
            sections = load_sections(store.connection, corpus)
    except MedsafeError as exc:
        raise fail(exc) from None
    if as_json:
        emit_json(
            [
                {
                    "ref": s.ref,
                    "number": s.number,
                    "chapter": s.chapter,
                    "start": s.start,
                    "end": s.end,
                    "sha256": s.sha256,
                    "language": s.language,
                }
                for s in sections
            ]
        )
        return
    out.print(
        f"corpus {corpus}: {len(sections)} sections, hash {corpus_hash(sections)[:16]}",
        markup=False,
    )
    for s in sections:
        out.print(f"  {s.ref}  [{s.language}] {len(s.text)} chars  {s.sha256[:12]}", markup=False)


@generate_app.callback()
def generate_command(
    ctx: typer.Context,
    corpus: Annotated[str | None, typer.Option("--corpus", help="Corpus name (in --db).")] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="Generator: KIND/NAME or a --config name.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--out", help="Release folder to write.")
    ] = None,
    validator: Annotated[
        str | None,
        typer.Option(
            "--validator",
            help="Validator model (KIND/NAME or config name); without it items are not validated.",
        ),
    ] = None,
    db: DbOption = Path("medsafe.db"),
    base_url: Annotated[
        str | None, typer.Option("--base-url", help="Base URL of an openai/ generator.")
    ] = None,
    validator_base_url: Annotated[
        str | None,
        typer.Option(
            "--validator-base-url", help="Base URL of an openai/ validator (default: --base-url)."
        ),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="TOML of named models (models.NAME tables).")
    ] = None,
    languages: Annotated[
        str | None,
        typer.Option(
            "--languages", help="Item languages, e.g. zh,ja,en (default: each document's own)."
        ),
    ] = None,
    taxonomy: Annotated[
        str, typer.Option(help="Framework of the scenes (medes, ama, ...; 'corpus': free).")
    ] = "medes",
    against: Annotated[
        list[str] | None,
        typer.Option(
            "--against", metavar="SUITE", help="An existing suite to deduplicate against (repeat)."
        ),
    ] = None,
    threshold: Annotated[
        float, typer.Option(help="MinHash: Jaccard at or above which items are near-duplicates.")
    ] = 0.8,
    paraphrase_threshold: Annotated[
        float,
        typer.Option(
            help="Embedding cosine at or above which items are paraphrases (0 skips this stage)."
        ),
    ] = 0.95,
    name: Annotated[str | None, typer.Option(help="Suite name (default: the corpus).")] = None,
    on_fail: Annotated[
        str,
        typer.Option(
            "--on-fail",
            help="Items the validator fails: 'drop' (rejected.jsonl) or 'review' (also "
            "OUT/validation.review.jsonl; labelled 'keep' they return on the next run).",
        ),
    ] = "drop",
    concurrency: Annotated[int, typer.Option(help="Requests in flight per stage.")] = 8,
    timeout: Annotated[float, typer.Option(help="Seconds per request.")] = 120.0,
    retries: Annotated[int, typer.Option(help="Retries of a retryable failure.")] = 3,
    max_tokens: Annotated[int, typer.Option(help="max_tokens of every request.")] = 2048,
    phi_check: PhiOption = None,
    allow_phi: AllowPhiOption = False,
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="Progress bar per stage.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
) -> None:
    """Generate a release from a corpus (every stage cached by request hash: a rerun asks
    nothing again; resumable after kill -9)."""
    if ctx.invoked_subcommand is not None:
        return
    missing = [o for o, v in (("--corpus", corpus), ("--model", model), ("-o", output)) if not v]
    if missing:
        raise fail(f"missing option(s) {', '.join(missing)} (see medsafe generate --help)")
    assert corpus is not None and model is not None and output is not None
    from medsafe.authoring.generate import AllCallsFailed, GenerateOptions, generate_release
    from medsafe.authoring.stages import ModelTarget
    from medsafe.pipeline import run_async
    from medsafe.schema import ModelParams

    params = ModelParams(max_tokens=max_tokens)

    def target(spec: str, url: str | None) -> ModelTarget:
        return ModelTarget(
            spec, url, config, params, concurrency, timeout, retries, phi_check, allow_phi
        )

    if on_fail not in ("drop", "review"):
        raise fail(f"--on-fail must be drop or review, got {on_fail!r}")
    options = GenerateOptions(
        db=db,
        corpus=corpus,
        generator=target(model, base_url),
        out=output,
        validator=target(validator, validator_base_url or base_url) if validator else None,
        languages=tuple(x.strip() for x in languages.split(",") if x.strip()) if languages else (),
        taxonomy=taxonomy,
        against=tuple(against or ()),
        threshold=threshold,
        paraphrase_threshold=paraphrase_threshold or None,
        name=name,
        on_fail="review" if on_fail == "review" else "drop",
        show_progress=progress,
        notify=lambda msg: err.print(msg, markup=False),
    )
    try:
        release = run_async(generate_release(options))
    except AllCallsFailed as exc:
        raise fail(exc, ExitCode.ALL_CALLS_FAILED) from None
    except MedsafeError as exc:
        raise fail(exc) from None
    if as_json:
        emit_json(release.manifest)
        return
    counts = release.manifest["counts"]
    out.print(
        f"release {release.manifest['release']} written to {output}: {counts['rules']} rules, "
        f"{counts['items']} items, {counts['seeds']} red-team seeds; {counts['rejected']} "
        f"rejected (rejected.jsonl), {counts['deduplicated']} removed as duplicates (dedup.jsonl)",
        markup=False,
    )
    for key in ("kind", "language", "scene"):
        parts = ", ".join(f"{k} {v}" for k, v in counts[key].items())
        out.print(f"  {key}: {parts}", markup=False)


@generate_app.command("diff")
def generate_diff(
    old: Annotated[Path, typer.Argument(help="The older release folder.")],
    new: Annotated[Path, typer.Argument(help="The newer release folder.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the items of OLD whose source sections changed or were removed in NEW."""
    from medsafe.authoring.release import diff_releases

    try:
        diff = diff_releases(old, new)
    except MedsafeError as exc:
        raise fail(exc) from None
    if as_json:
        emit_json(diff.to_json())
        return
    out.print(
        f"sections: {len(diff.changed_sections)} changed, {len(diff.removed_sections)} removed, "
        f"{len(diff.added_sections)} added; items whose source changed: {len(diff.stale_items)}; "
        f"new items: {len(diff.new_items)}",
        markup=False,
    )
    for ref in diff.changed_sections:
        out.print(f"  changed section {ref}", markup=False)
    for ref in diff.removed_sections:
        out.print(f"  removed section {ref}", markup=False)
    for item, why in diff.stale_items.items():
        out.print(f"  {item}  (source {why})", markup=False)


def curate_command(
    suite: Annotated[
        str,
        typer.Argument(
            help="Suite of items with known answers (MCQ keys, or open items' references)."
        ),
    ],
    model: Annotated[
        str, typer.Option("--model", help="Rationale writer (KIND/NAME or a --config name).")
    ],
    output: Annotated[
        Path,
        typer.Option(
            "-o",
            "--out",
            help="Folder for review files, history.jsonl, curated.jsonl and curated.parquet.",
        ),
    ],
    judge: Annotated[
        list[str] | None,
        typer.Option(
            "--judge",
            metavar="MODEL",
            help="An LLM reviewer scoring the rubric (repeat for several).",
        ),
    ] = None,
    expert: Annotated[
        list[str] | None,
        typer.Option(
            "--expert",
            metavar="NAME",
            help="A human reviewer labelling the round's review file (repeat).",
        ),
    ] = None,
    adjudicator: Annotated[
        str | None,
        typer.Option(
            help="Model that decides when reviewers disagree (else: adjudication "
            "lines of the review file, or another round)."
        ),
    ] = None,
    rubric: Annotated[
        Path | None, typer.Option(help="Rubric TOML/JSON (default: the 5-criterion CoT rubric).")
    ] = None,
    suite_rationales: Annotated[
        bool,
        typer.Option(
            "--suite-rationales",
            help="Round 1 reviews each item's own metadata.rationale (medsafe generate writes "
            "one per MCQ) instead of asking the writer; later rounds regenerate.",
        ),
    ] = False,
    review_in: Annotated[
        str,
        typer.Option(
            "--review-in",
            help="Where experts label: 'files' (DIR/round-N.review.jsonl) or 'workbench' (a "
            "review task in --db, for medsafe serve or medsafe review label).",
        ),
    ] = "files",
    k: Annotated[
        int | None, typer.Option("--k", help="Reviews needed for consensus (default: all).")
    ] = None,
    margin: Annotated[
        float, typer.Option(help="Largest difference of two reviewers' scores that agrees.")
    ] = 1.0,
    max_rounds: Annotated[int, typer.Option(help="Round limit.")] = 3,
    sft: Annotated[
        Path | None,
        typer.Option(
            "--sft",
            metavar="FILE",
            help="Also write the accepted items as TRL SFT "
            "records (the item's prompt, then the rationale), .jsonl or .parquet.",
        ),
    ] = None,
    db: Annotated[
        Path,
        typer.Option(
            "--db",
            help="Results store (SQLite file or postgresql:// URL) caching the model calls.",
            callback=db_location,
        ),
    ] = Path("medsafe.db"),
    base_url: Annotated[
        str | None, typer.Option("--base-url", help="Base URL of openai/ models (all of them).")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="TOML of named models (models.NAME tables).")
    ] = None,
    concurrency: Annotated[int, typer.Option(help="Requests in flight per stage.")] = 8,
    timeout: Annotated[float, typer.Option(help="Seconds per request.")] = 120.0,
    phi_check: PhiOption = None,
    allow_phi: AllowPhiOption = False,
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="Progress bar per stage.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print counts and paths as JSON.")
    ] = False,
) -> None:
    """Curate chain-of-thought rationales: write, score against a rubric (LLM judges and
    experts through review files), revise with feedback until consensus or the round limit.
    Run it again after experts add labels: it continues where it waited (model calls cached)."""
    from medsafe.authoring.curate import CurateOptions, curate
    from medsafe.authoring.curate_export import write_outputs
    from medsafe.authoring.rubric import load_rubric
    from medsafe.authoring.stages import ModelTarget
    from medsafe.pipeline import run_async

    def target(spec: str) -> ModelTarget:
        return ModelTarget(
            spec,
            base_url,
            config,
            concurrency=concurrency,
            timeout_s=timeout,
            phi_check=phi_check,
            allow_phi=allow_phi,
        )

    if review_in not in ("files", "workbench"):
        raise fail(f"--review-in must be files or workbench, got {review_in!r}")
    try:
        options = CurateOptions(
            suite=suite,
            writer=target(model),
            out=output,
            db=db,
            rubric=load_rubric(rubric),
            judges=tuple(target(j) for j in judge or ()),
            experts=tuple(expert or ()),
            adjudicator=target(adjudicator) if adjudicator else None,
            k=k,
            margin=margin,
            max_rounds=max_rounds,
            review_in="workbench" if review_in == "workbench" else "files",
            suite_rationales=suite_rationales,
            show_progress=progress,
            notify=lambda msg: err.print(msg, markup=False),
        )
        outcome = run_async(curate(options))
        paths = write_outputs(options, outcome)
        if sft is not None and not outcome.waiting_on:
            _write_sft(sft, options.suite, outcome)
            paths["sft"] = sft
    except MedsafeError as exc:
        raise fail(exc) from None
    counts = outcome.counts()
    if as_json:
        emit_json(
            {
                "counts": counts,
                "waiting_on": [str(p) for p in outcome.waiting_on],
                **{k: str(v) for k, v in paths.items()},
            }
        )
        return
    parts = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    out.print(f"curate: {parts}; history in {paths['history']}", markup=False)
    for where in outcome.waiting_on:
        out.print(f"waiting for expert labels in {where}; then run this again", markup=False)
    if not outcome.waiting_on:
        out.print(f"verified dataset: {paths['jsonl']} and {paths['parquet']}", markup=False)


def _write_sft(path: Path, suite: str, outcome: CurateOutcome) -> None:
    """The accepted rationales through the alignment builder's one SFT writer."""
    from medsafe.align.formats import sft_record, write_records
    from medsafe.authoring.curate import load_curation_items

    records = [
        sft_record([m.model_dump() for m in item.messages], outcome.rounds[item.id][-1].rationale)
        for item in load_curation_items(suite)
        if outcome.status[item.id] == "accepted"
    ]
    write_records(path, records)
