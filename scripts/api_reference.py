"""Write docs/API.md from the docstrings of the public API and the
command's own help, so the reference says what the installed code does.

    python scripts/api_reference.py           # rewrite docs/API.md
    python scripts/api_reference.py --check   # exit 1 if docs/API.md is stale

tests/test_docs.py runs the check, so a changed docstring, signature or
option fails CI until the reference is regenerated.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import io
import os
import re
import sys
from pathlib import Path

import vastdict
import vastdict.lsh
import vastdict.lsh_corpus
from vastdict import cli

OUT = Path(__file__).resolve().parent.parent / "docs" / "API.md"

# What the reference covers, in order: (module, names). Everything named
# here is public contract; a name without a docstring fails the check.
SECTIONS = [
    (vastdict, ["open", "build", "verify", "parse_size", "Store", "FrozenStore"]),
    (vastdict, ["IntMap", "IntMultiMap"]),
    (vastdict.lsh, vastdict.lsh.__all__),
    (vastdict.lsh_corpus, ["generate", "Corpus", "write_jsonl"]),
]
TITLES = ["Stores", "Integer maps", "vastdict.lsh", "vastdict.lsh_corpus"]
ERRORS = ["Error", *sorted(n for n in vastdict.__all__ if n.endswith("Error") and n != "Error")]
# Members a user never calls by name, or that collections.abc documents.
SKIP = {"popitem", "keys", "fromkeys", "copy", "register"}


def signature(obj: object) -> str:
    try:
        sig = str(inspect.signature(obj))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return ""
    # Methods of the native classes show `self, /`: a reader never passes it.
    sig = re.sub(r"^\(self(, /)?(, )?", "(", sig)
    # Postponed annotations come quoted; string defaults keep their quotes.
    return re.sub(r"(: |-> )'([^']*)'", r"\1\2", sig)


def doc(obj: object, where: str, missing: list[str]) -> list[str]:
    text = inspect.getdoc(obj) or ""
    if not text.strip():
        missing.append(where)
        return ["(undocumented)", ""]
    out, in_example = [], False
    for line in text.splitlines():
        example = line.startswith((">>>", "...")) or (in_example and line.strip())
        if example and not in_example:
            out.append("```pycon")
        if in_example and not example:
            out.append("```")
        in_example = bool(example)
        out.append(line)
    if in_example:
        out.append("```")
    return [*out, ""]


def own_members(cls: type) -> list[tuple[str, object]]:
    """Public members defined by vastdict (its classes or their native
    bases), not those inherited from collections.abc or object."""
    out = []
    for name in sorted(dir(cls)):
        if name.startswith("_") or name in SKIP:
            continue
        owner = next((c for c in cls.__mro__ if name in c.__dict__), None)
        if owner is None or not owner.__module__.startswith("vastdict"):
            continue
        out.append((name, owner.__dict__[name]))
    return out


def document(module, name: str, missing: list[str]) -> list[str]:
    obj = getattr(module, name)
    qual = f"{module.__name__}.{name}"
    if not inspect.isclass(obj):
        return [f"### `{qual}{signature(obj)}`", "", *doc(obj, qual, missing)]
    lines = [f"### `{qual}{signature(obj)}`", "", *doc(obj, qual, missing)]
    for member, raw in own_members(obj):
        attr = getattr(obj, member)
        kind = ""
        if isinstance(raw, property) or inspect.isgetsetdescriptor(raw):
            kind = " (property)"
        elif isinstance(raw, classmethod):
            kind = " (classmethod)"
        lines += [f"#### `{name}.{member}{signature(attr)}`{kind}", ""]
        lines += doc(attr, f"{qual}.{member}", missing)
    return lines


def command_help() -> list[str]:
    """`vastdict --help` and each subcommand's, at a fixed width."""
    os.environ["COLUMNS"] = "100"
    lines = ["## The `vastdict` command", ""]
    names = ["", "demo", "build", "get", "put", "delete", "stats", "verify", "compact"]
    names += ["export", "dedup", "bench"]
    for sub in names:
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf), contextlib.suppress(SystemExit):
            cli.main([sub, "--help"] if sub else ["--help"])
        lines += [f"### `{' '.join(['vastdict', sub]).strip()}`", ""]
        lines += ["```text", *buf.getvalue().rstrip().splitlines(), "```", ""]
    return lines


def render() -> tuple[str, list[str]]:
    missing: list[str] = []
    lines = [
        "# API reference",
        "",
        "Generated from the docstrings by `python scripts/api_reference.py`; a test fails",
        "when this file and the code disagree. Guides: `docs/sharing.md`,",
        "`docs/bulk-builds.md`, `docs/typed-maps.md`, `docs/near-duplicates.md`,",
        "`docs/migrating.md`.",
        "",
    ]
    for title, (module, names) in zip(TITLES, SECTIONS, strict=True):
        lines += [f"## {title}", ""]
        for name in names:
            lines += document(module, name, missing)
    lines += ["## Exceptions", ""]
    for name in ERRORS:
        exc = getattr(vastdict, name)
        bases = ", ".join(b.__name__ for b in exc.__bases__)
        lines += [f"### `vastdict.{name}({bases})`", "", *doc(exc, name, missing)]
    lines += command_help()
    return "\n".join(lines).rstrip() + "\n", missing


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare instead of writing")
    args = ap.parse_args()
    text, missing = render()
    if missing:
        print("undocumented: " + ", ".join(missing), file=sys.stderr)
        return 1
    if args.check:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT} is stale: run python scripts/api_reference.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
