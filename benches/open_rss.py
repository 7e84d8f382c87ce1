"""Anonymous memory of a fresh process that opens a store and reads from it.

    python benches/open_rss.py STORE [--gets 100000]

Prints JSON: RssAnon (private memory) and RssFile (mapped file pages) after
starting Python, after importing vastdict, after opening the store, and
after random gets.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random


def status() -> dict[str, int]:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("RssAnon:", "RssFile:")):
                name, value = line.split(":")
                out[name] = int(value.split()[0]) * 1024
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("store")
    ap.add_argument("--gets", type=int, default=100_000)
    args = ap.parse_args()
    out = {"start": status()}
    import vastdict

    out["imported"] = status()
    s = vastdict.open(args.store, "r")
    out["opened"] = status()
    keys = list(itertools.islice(s, args.gets))
    random.Random(1).shuffle(keys)
    for k in keys:
        s[k]
    out["after_gets"] = status()
    out["entries"] = len(s)
    out["anon_growth_open"] = out["opened"]["RssAnon"] - out["imported"]["RssAnon"]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
