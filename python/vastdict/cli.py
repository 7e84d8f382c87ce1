"""The ``vastdict`` command.

``vastdict demo`` builds a frozen store from generated URL-like pairs and
compares it with a ``dict`` of the same data, read from one and from four
processes; the other subcommands build, read, change, check and export
stores, and ``dedup`` finds near-duplicate documents. Exit codes: 0
success, 1 failure, 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import vastdict


def cmd_demo(args: argparse.Namespace) -> int:
    from . import _demo

    return _demo.run(args.n, quiet=args.quiet, with_anchors=args.with_anchors)


def cmd_get(args: argparse.Namespace) -> int:
    s = vastdict.open(args.store, "r")
    code = 0
    for key in args.keys:
        # Other codecs look the text up as it is (a str key of a json or
        # pickle store), as this command always has.
        k = _from_text(key, s.key_codec, "key") if s.key_codec in ("bytes", "int") else key
        try:
            print(s[k])
        except KeyError:
            print(f"{key}: not found", file=sys.stderr)
            code = 1
    s.close()
    return code


def _from_text(text: str, codec: str, what: str) -> object:
    """A key or value typed on the command line, in the store's codec."""
    if codec == "bytes":
        return text.encode()
    if codec == "int":
        try:
            return int(text)
        except ValueError:
            raise vastdict.InvalidError(
                f"{what} {text!r} is not an integer; this store's {what}s are"
            ) from None
    if codec == "json":
        try:
            return json.loads(text)
        except ValueError as e:
            raise vastdict.InvalidError(f"{what} {text!r} is not JSON: {e}") from None
    if codec == "pickle":
        raise vastdict.InvalidError(f"this store pickles its {what}s; write them from Python")
    return text


def cmd_put(args: argparse.Namespace) -> int:
    opts = {} if os.path.exists(args.store) else {"keys": args.keys, "values": args.values}
    with vastdict.open(args.store, "c", **opts) as s:
        s[_from_text(args.key, s.key_codec, "key")] = _from_text(args.value, s.value_codec, "value")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    code = 0
    with vastdict.open(args.store, "w") as s:
        for key in args.keys:
            try:
                del s[_from_text(key, s.key_codec, "key")]
            except KeyError:
                print(f"{key}: not found", file=sys.stderr)
                code = 1
    return code


def cmd_compact(args: argparse.Namespace) -> int:
    with vastdict.open(args.store, "w") as s:
        before = s.stats()
        s.compact()
        after = s.stats()
    print(
        f"{args.store}: {before['disk_bytes'] / 2**20:,.1f} MiB -> "
        f"{after['disk_bytes'] / 2**20:,.1f} MiB on disk, {after['entries']:,} entries"
    )
    return 0


def _to_text(x: object) -> object:
    """A key or value as JSON can hold it (bytes as UTF-8 text)."""
    if isinstance(x, bytes):
        try:
            return x.decode()
        except UnicodeDecodeError:
            raise vastdict.InvalidError(
                "a key or value is not UTF-8 text; export to Parquet (.parquet), which keeps bytes"
            ) from None
    return x


def cmd_export(args: argparse.Namespace) -> int:
    fmt = args.format or os.path.splitext(args.out)[1].lstrip(".").lower()
    if fmt not in ("tsv", "jsonl", "parquet"):
        raise vastdict.InvalidError(
            f"{args.out}: name it .tsv, .jsonl or .parquet, or pass --format"
        )
    from ._vastdict import NativeProgress

    s = vastdict.open(args.store, "r")
    tmp = f"{args.out}.tmp-{os.getpid()}"
    n = 0
    bar = NativeProgress(len(s), "pairs", not args.quiet)
    try:
        if fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            keys, values = [], []
            for k, v in s.items():
                n += 1
                if n % 65536 == 0:
                    bar.inc(65536)
                keys.append(k)
                values.append(v if not isinstance(v, dict | list) else json.dumps(v))
            pq.write_table(pa.table({"key": keys, "value": values}), tmp)
        else:
            with open(tmp, "w", encoding="utf-8") as f:
                for k, v in s.items():
                    n += 1
                    if n % 65536 == 0:
                        bar.inc(65536)
                    k, v = _to_text(k), _to_text(v)
                    if fmt == "jsonl":
                        f.write(json.dumps({"key": k, "value": v}) + "\n")
                        continue
                    k, v = str(k), v if isinstance(v, str) else json.dumps(v)
                    if any(c in t for t in (k, v) for c in "\t\n"):
                        raise vastdict.InvalidError(
                            "a key or value holds a tab or newline; export to .jsonl or .parquet"
                        )
                    f.write(f"{k}\t{v}\n")
        os.replace(tmp, args.out)
    finally:
        bar.finish()
        s.close()
        if os.path.exists(tmp):
            os.remove(tmp)
    if not args.quiet:
        print(f"{args.out}: {n:,} pairs")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    s = vastdict.open(args.store, "r")
    st = s.stats()
    s.close()
    if args.json:
        print(json.dumps(st))
    else:
        for k, v in st.items():
            print(f"{k:>15}: {v:,}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    report = vastdict.verify(args.store)
    what = ", ".join(f"{v:,} {k}" for k, v in report.items())
    print(f"ok: {what} checked")
    return 0


def _column(text: str | None) -> int | str | None:
    return int(text) if text is not None and text.isdigit() else text


def cmd_build(args: argparse.Namespace) -> int:
    summary = vastdict.build(
        args.out,
        args.source,
        keys=args.keys,
        values=args.values,
        memory_budget=args.memory_budget,
        threads=args.threads,
        on_duplicate=args.on_duplicate,
        progress=not args.quiet,
        format=args.format,
        key_column=_column(args.key_column),
        value_column=_column(args.value_column),
        delimiter=args.delimiter,
        header=args.header,
        errors=args.errors,
    )
    if not args.quiet:
        skipped = f", {summary['skipped']:,} bad lines skipped" if summary["skipped"] else ""
        print(
            f"{args.out}: {summary['pairs']:,} pairs from {summary['received']:,}{skipped}, "
            f"{summary['bytes_on_disk'] / 2**20:,.1f} MiB, {summary['seconds']:.1f} s"
        )
    return 0


def cmd_dedup(args: argparse.Namespace) -> int:
    from ._dedup_file import dedup_file

    s = dedup_file(
        args.input,
        args.output,
        text_field=args.text_field,
        id_field=args.id_field or None,
        threshold=args.threshold,
        num_perm=args.num_perm,
        ngram=args.ngram,
        unit=args.unit,
        verify=args.verify,
        batch_size=args.batch_size,
        input_format=args.format,
        progress=not args.quiet,
    )
    if not args.quiet:
        print(
            f"{s['documents']:,} documents, {s['clusters']:,} clusters, "
            f"{s['duplicates']:,} duplicates removed ({s['matched_pairs']:,} of "
            f"{s['candidate_pairs']:,} candidate pairs matched), {s['seconds']:.1f} s"
            f" -> {args.output}"
        )
    return 0


def _suite(benches: str | None) -> str:
    """benches/suite.py of the source tree: the one named, the working
    directory's, or the one beside an editable install."""
    from pathlib import Path

    places = (
        [Path(benches)]
        if benches
        else [Path.cwd() / "benches", Path(__file__).parents[2] / "benches"]
    )
    for place in places:
        if (place / "suite.py").is_file():
            return str(place / "suite.py")
    raise vastdict.InvalidError(
        "the benchmark suite is the benches/ directory of vastdict's source tree; run "
        "vastdict bench inside a clone of the repository, or pass --benches DIR"
    )


def cmd_bench(args: argparse.Namespace) -> int:
    import subprocess

    cmd = [sys.executable, _suite(args.benches), "--sizes", str(args.n)]
    cmd += ["--rounds", str(args.rounds), "--only", args.only]
    for option in ("stores", "results_dir", "report", "charts"):
        if getattr(args, option):
            cmd += [f"--{option.replace('_', '-')}", getattr(args, option)]
    return subprocess.run(cmd, check=False).returncode


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="vastdict", description=__doc__.splitlines()[0])
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", required=True)

    def command(name: str, func, help: str, store: bool = True) -> argparse.ArgumentParser:
        # One subcommand: its parser, its STORE argument when it has one,
        # and the function that runs it.
        cmd = sub.add_parser(name, help=help)
        if store:
            cmd.add_argument("store")
        cmd.set_defaults(func=func)
        return cmd

    demo = command(
        "demo", cmd_demo, "build a store from generated data and compare with dict", False
    )
    demo.add_argument("--n", type=int, default=10_000_000, help="number of pairs (default 10M)")
    demo.add_argument(
        "--with-anchors",
        action="store_true",
        help="add every installed store the benchmarks compare with (lmdb, rocksdict, ...)",
    )
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    command("get", cmd_get, "print the values of keys").add_argument("keys", nargs="+")
    command("stats", cmd_stats, "print figures about a store").add_argument(
        "--json", action="store_true"
    )
    command("verify", cmd_verify, "check every byte of a store")
    build = command("build", cmd_build, "build a frozen store from a file", False)
    build.add_argument("source", help="input file")
    build.add_argument("out", help="frozen store to write")
    build.add_argument("--format", choices=["tsv", "csv", "jsonl", "parquet"])
    build.add_argument("--keys", default="bytes", help="key codec (default bytes)")
    build.add_argument("--values", default="bytes", help="value codec (default bytes)")
    build.add_argument("--key-column", help="column number or name, or JSON field (default: first)")
    build.add_argument("--value-column", help="column number or name, or JSON field")
    build.add_argument("--delimiter", help="field separator (default tab for TSV, comma for CSV)")
    build.add_argument("--header", action="store_true", help="the first line names the columns")
    build.add_argument("--memory-budget", default="2GiB")
    build.add_argument("--threads", type=int)
    build.add_argument("--on-duplicate", default="last", choices=["first", "last", "error"])
    build.add_argument("--errors", default="raise", choices=["raise", "skip"])
    build.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    put = command("put", cmd_put, "set one key (creating the store if missing)")
    put.add_argument("key")
    put.add_argument("value")
    put.add_argument("--keys", default="str", help="key codec of a new store (default str)")
    put.add_argument("--values", default="str", help="value codec of a new store (default str)")
    command("delete", cmd_delete, "remove keys").add_argument("keys", nargs="+")
    command("compact", cmd_compact, "reclaim the space of overwritten and deleted entries")
    export = command("export", cmd_export, "write every pair to a TSV, JSONL or Parquet file")
    export.add_argument("out", help="file to write: .tsv, .jsonl or .parquet")
    export.add_argument("--format", choices=["tsv", "jsonl", "parquet"])
    export.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    bench = command(
        "bench",
        cmd_bench,
        "run the benchmark suite beside the installed anchors; write RESULTS.md and charts",
        False,
    )
    bench.add_argument("--n", type=int, default=1_000_000, help="pairs (default 1M)")
    bench.add_argument("--rounds", type=int, default=3, help="repeats of each measurement")
    bench.add_argument(
        "--only",
        default="store,frozen,intmap,multimap,growth,lsh",
        help="benchmarks to run (default all that apply at this size)",
    )
    bench.add_argument("--stores", help="stores to compare, e.g. vastdict,dict,lmdb")
    bench.add_argument("--results-dir", help="where the JSON results go (default benches/results)")
    bench.add_argument("--report", help="RESULTS.md to write (default benches/RESULTS.md)")
    bench.add_argument("--charts", help="directory for the PNG charts (default benches/charts)")
    bench.add_argument("--benches", help="the benches/ directory of a source tree")
    dd = sub.add_parser(
        "dedup",
        help="find near-duplicate documents in a JSONL or Parquet file",
        description="Write each document's id, cluster (the id of its cluster's first "
        "document) and whether to keep it, as JSONL (or Parquet for a .parquet OUT).",
    )
    dd.add_argument("input", help="JSONL or Parquet file of documents")
    dd.add_argument("--output", "-o", required=True, help="file to write (JSONL or .parquet)")
    dd.add_argument("--text-field", default="text", help="field holding the text (default text)")
    dd.add_argument("--id-field", default="id", help="field holding the id ('' for line numbers)")
    dd.add_argument("--threshold", type=float, default=0.8, help="Jaccard similarity (default 0.8)")
    dd.add_argument("--num-perm", type=int, default=128)
    dd.add_argument("--ngram", type=int, default=5, help="words (or characters) per shingle")
    dd.add_argument("--unit", choices=["word", "char"], default="word")
    dd.add_argument("--verify", choices=["exact", "estimate"], default="exact")
    dd.add_argument(
        "--format", choices=["jsonl", "parquet"], help="input format (default: by name)"
    )
    dd.add_argument("--batch-size", type=int, default=65536)
    dd.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    dd.set_defaults(func=cmd_dedup)
    args = p.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("vastdict: interrupted", file=sys.stderr)
        return 1
    except vastdict.Error as e:
        if args.debug:
            raise
        print(f"vastdict: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
