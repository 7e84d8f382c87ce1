"""The examples in docstrings and in the README run and give what they show."""

import doctest
import re
import subprocess
import sys
from pathlib import Path

import pytest

import vastdict
import vastdict._anchors
import vastdict._frozen
import vastdict._intmap
import vastdict._measure
import vastdict._multimap
import vastdict._size
import vastdict._store
import vastdict.lsh
import vastdict.lsh_corpus

README = Path(__file__).resolve().parent.parent / "README.md"


def test_docstring_examples():
    modules = (
        vastdict,
        vastdict._store,
        vastdict._size,
        vastdict._frozen,
        vastdict._intmap,
        vastdict._multimap,
        vastdict._anchors,
        vastdict._measure,
        vastdict.lsh,
        vastdict.lsh_corpus,
    )
    for module in modules:
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.attempted > 0, f"{module.__name__} has no examples"
        assert result.failed == 0, f"{module.__name__}: {result.failed} examples failed"


def test_readme_python_example_runs(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks, "README has no Python example"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(blocks[0], namespace)  # the quick example, creating urls.vd in tmp_path
    s = namespace["s"]
    assert s["https://example.org"] == 404
    assert s.get_many(["https://example.com", "x"]) == [200, None]


def test_readme_frozen_example_runs(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    frozen = [b for b in blocks if "vastdict.build(" in b]
    assert frozen, "README has no frozen-store example"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pairs.tsv").write_text("some key\tits value\na\t1\nb\t2\n")
    namespace: dict = {}
    exec(frozen[0], namespace)
    table = namespace["table"]
    assert table["some key"] == "its value"
    assert table.get_many(["a", "b"]) == ["1", "2"]


def test_readme_intmap_example_runs(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    block = [b for b in blocks if "IntMap(" in b]
    assert block, "README has no IntMap example"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(block[0], namespace)
    assert namespace["ids"].get_many([22, 44], default=0).tolist() == [2, 0]
    assert namespace["shared"][33] == 3


def test_readme_multimap_example_runs(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    setup = [b for b in blocks if "IntMap(" in b]
    block = [b for b in blocks if "IntMultiMap(" in b]
    assert block, "README has no IntMultiMap example"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(setup[0], namespace)  # imports
    exec(block[0], namespace)
    assert namespace["offsets"].tolist() == [0, 2, 2, 3]
    assert namespace["values"].tolist() == [1, 3, 2]
    assert vastdict.IntMultiMap.open(tmp_path / "bands.vmm").get(9).tolist() == [2]


def test_readme_lsh_example_runs(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    block = [b for b in blocks if "LSHIndex(" in b]
    assert block, "README has no LSH example"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(block[0], namespace)
    assert namespace["index"].query(namespace["sigs"][0]).tolist() == [0, 1]
    assert namespace["clusters"].tolist() == [0, 0, 2]
    assert len(vastdict.lsh.LSHIndex.open(tmp_path / "docs.lsh")) == 3


DOCS = Path(__file__).resolve().parent.parent / "docs"
GUIDES = sorted(p for p in DOCS.glob("*.md") if "```python" in p.read_text())


@pytest.mark.parametrize("guide", GUIDES, ids=[p.stem for p in GUIDES])
def test_guide_examples_run_top_to_bottom(guide, tmp_path):
    # A guide's Python blocks form one script, run as a user would run it
    # (a real __main__, so multiprocessing examples work), in an empty
    # directory: every input a guide reads, it writes itself.
    blocks = re.findall(r"```python\n(.*?)```", guide.read_text(), re.S)
    script = tmp_path / "guide.py"
    script.write_text("\n".join(blocks))
    r = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, f"{guide.name}:\n{r.stderr[-3000:]}"


def test_every_guide_with_examples_is_run():
    names = {p.name for p in GUIDES}
    want = {"bulk-builds.md", "migrating.md", "near-duplicates.md", "sharing.md", "typed-maps.md"}
    assert want <= names


def test_api_reference_matches_the_code():
    script = Path(__file__).resolve().parent.parent / "scripts" / "api_reference.py"
    r = subprocess.run(
        [sys.executable, str(script), "--check"], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr
