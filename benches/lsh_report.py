"""The MinHash-LSH sections of RESULTS.md (called by report.py)."""

from __future__ import annotations

from figures import BarTable, median
from figures import run_median as _m
from figures import span as _span


def _rate(runs: list[dict], key: str) -> float:
    return _m(runs, lambda r: r["n"] / r[key])


def bars(all_data: list[dict]) -> list[str]:
    table = BarTable("Bars of the MinHash-LSH issue")
    row = table.row
    for data in all_data:
        n = data["n"]
        for config, kinds in data["runs"].items():
            v, rn, ds = (
                kinds.get("vastdict", []),
                kinds.get("rensa", []),
                kinds.get("datasketch", []),
            )
            if not v:
                continue
            label = f"{n:,} docs, {config}"
            # Speed is compared only within one run: a contestant's runs
            # kept from an earlier run met another phase of a shared host.
            if rn and "datasketch" in data.get("kept", []):
                ours, theirs = _rate(v, "sign_s"), _rate(rn, "sign_s")
                row(
                    f"{label}: text to signatures at least 10x rensa"
                    " (datasketch's runs are from an earlier run: see its section)",
                    f"{ours:,.0f} docs/s: {ours / theirs:.1f}x rensa ({theirs:,.0f})",
                    ours >= 10 * theirs,
                )
            elif rn and ds:
                ours, theirs, slow = (
                    _rate(v, "sign_s"),
                    _rate(rn, "sign_s"),
                    _rate(ds, "sign_s"),
                )
                row(
                    f"{label}: text to signatures at least 10x rensa and 50x datasketch",
                    f"{ours:,.0f} docs/s: {ours / theirs:.1f}x rensa ({theirs:,.0f}),"
                    f" {ours / slow:.0f}x datasketch ({slow:,.0f})",
                    ours >= 10 * theirs and ours >= 50 * slow,
                )
            if config == "16x8":
                mem = _m(v, lambda r: r["index_bytes"] / r["n"])
                tables = _m(v, lambda r: r["table_bytes"] / r["n"])
                row(
                    f"{label}: index RAM at most 100 B/doc (keep_signatures=False)",
                    f"{mem:.0f} B/doc growth of RSS ({tables:.0f} B/doc in the band tables)",
                    mem <= 100,
                )
            if rn:
                p50, p99 = _m(v, lambda r: r["query_p50_us"]), _m(v, lambda r: r["query_p99_us"])
                r50, r99 = _m(rn, lambda r: r["query_p50_us"]), _m(rn, lambda r: r["query_p99_us"])
                row(
                    f"{label}: single `query` p50/p99 no worse than rensa",
                    f"{p50:.1f}/{p99:.1f} us (rensa {r50:.1f}/{r99:.1f})",
                    p50 <= r50 and p99 <= r99,
                )
                qm, rq = _rate(v, "query_many_s"), _rate(rn, "query_many_s")
                row(
                    f"{label}: `query_many` at least 2x rensa's batch rate",
                    f"{qm:,.0f}/s, {qm / rq:.2f}x rensa ({rq:,.0f}/s)",
                    qm >= 2 * rq,
                )
                ins, rins = _rate(v, "insert_s"), _rate(rn, "insert_s")
                row(
                    f"{label}: `insert_many` at least rensa's rate",
                    f"{ins:,.0f}/s vs {rins:,.0f}/s",
                    ins >= rins,
                )
            exact = [r["exact"] for r in v if "exact" in r]
            if exact:
                p, r_ = (
                    median([e["precision"] for e in exact]),
                    median([e["recall"] for e in exact]),
                )
                row(
                    f'{label}: `verify="exact"` precision >= 0.99, recall >= 0.98',
                    f"{p:.4f} / {r_:.4f}",
                    p >= 0.99 and r_ >= 0.98,
                )
            if ds:
                p, r_ = (
                    _m(v, lambda r: r["estimate"]["precision"]),
                    _m(v, lambda r: r["estimate"]["recall"]),
                )
                dp, dr = (
                    _m(ds, lambda r: r["estimate"]["precision"]),
                    _m(ds, lambda r: r["estimate"]["recall"]),
                )
                row(
                    f'{label}: `verify="estimate"` precision and recall at least'
                    " datasketch's - 0.01",
                    f"{p:.3f} / {r_:.3f} (datasketch {dp:.3f} / {dr:.3f})",
                    p >= dp - 0.01 and r_ >= dr - 0.01,
                )
        cli = data.get("cli", [])
        if cli and n >= 1_000_000:
            secs = median([c["seconds"] for c in cli])
            peak = median([c["peak_rss"] for c in cli])
            gb = cli[0]["input_bytes"] / 1e9
            row(
                f"`vastdict dedup` of {n:,} documents ({gb:.1f} GB of JSONL) under 60 s,"
                " peak RSS under 2 GiB",
                f"{secs:.1f} s, peak RSS {peak / 2**30:.2f} GiB",
                secs < 60 and peak < 2 * 2**30,
            )
    return table.lines()


def section(data: dict) -> list[str]:
    n = data["n"]
    lines = [
        f"## MinHash-LSH: {n:,} documents",
        "",
        f"Command: `{data['command']}` ({data['rounds']} round(s), each contestant in a fresh",
        "process; median with min-max). Corpus: `vastdict.lsh_corpus.generate(n, seed=1)`,",
        "100-400 words per document from a Zipf vocabulary, 30% derived from earlier",
        "documents; num_perm 128, 5-word shingles, threshold 0.8. Signing: text to",
        "signatures, shingling included (datasketch and rensa are fed the usual Python",
        "shingle lists). Index memory: growth of anonymous RSS while inserting every",
        "document (signatures made before; vastdict with `keep_signatures=False`, after",
        "`compact()`, which the insert time includes). Queries: 10,000 single queries from a",
        "Python loop; batch: every document at once (vastdict `query_many`, rensa",
        "`query_all`, datasketch a loop). Quality: pairs of documents, true Jaccard >= 0.8 on",
        "5-word shingles as positives; each library's estimate check (signature agreement",
        '>= 0.8), and vastdict\'s exact check (`near_duplicate_pairs(verify="exact")`, its',
        "own bands, 18 x 7 at 0.8).",
        "",
    ]
    for config, kinds in data["runs"].items():
        lines += [
            f"Bands: {config}",
            "",
            "| contestant | bands x rows | sign, docs/s | index B/doc | insert, docs/s |"
            " query p50 / p99, us | batch query, docs/s | estimate P / R | exact P / R |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for kind, runs in kinds.items():
            if not runs:
                continue
            r0 = runs[0]
            sign = [r["n"] / r["sign_s"] for r in runs]
            ins = [r["n"] / r["insert_s"] for r in runs]
            batch = [r["n"] / r["query_many_s"] for r in runs]
            mem = _m(runs, lambda r: r["index_bytes"] / r["n"])
            p50 = _m(runs, lambda r: r["query_p50_us"])
            p99 = _m(runs, lambda r: r["query_p99_us"])
            est = f"{_m(runs, lambda r: r['estimate']['precision']):.3f} / " + (
                f"{_m(runs, lambda r: r['estimate']['recall']):.3f}"
            )
            ex = [r["exact"] for r in runs if "exact" in r]
            exs = "-"
            if ex:
                exs = f"{median([e['precision'] for e in ex]):.4f} / "
                exs += f"{median([e['recall'] for e in ex]):.4f}"
            lines.append(
                f"| {kind} | {r0['bands']} x {r0['rows']} | {_span(sign, ',.0f')} | {mem:,.0f} |"
                f" {_span(ins, ',.0f')} | {p50:.1f} / {p99:.1f} | {_span(batch, ',.0f')} |"
                f" {est} | {exs} |"
            )
        lines.append("")
    for note in data.get("notes", []):
        lines += [f"Note: {note}.", ""]
    cli = data.get("cli", [])
    if cli:
        secs = [c["seconds"] for c in cli]
        peak = median([c["peak_rss"] for c in cli])
        lines += [
            f"`vastdict dedup` on the corpus's JSONL file ({cli[0]['input_bytes'] / 1e9:.2f} GB),"
            f" end to end (read, sign, index, exact check, cluster, write): {_span(secs, '.1f')} s,"
            f" peak RSS {peak / 2**30:.2f} GiB, {cli[0]['kept']:,} documents kept"
            + (f" (`{data['cli_command']}`)." if "cli_command" in data else "."),
            "",
        ]
    m = data.get("machine", {})
    ver = ", ".join(f"{k} {v}" for k, v in data.get("versions", {}).items())
    if m or ver:
        lines += [
            f"Machine: {m.get('cpu', '?')}, {m.get('nproc', '?')} cores. Versions: {ver}.",
            "",
        ]
    return lines
