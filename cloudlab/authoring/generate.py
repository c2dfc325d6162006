"""Build exercises/ from solutions/ (the single source of every exercise).

In each code cell of ``solutions/NN_slug.ipynb``, the lines between
``### BEGIN SOLUTION`` and ``### END SOLUTION`` become a TODO and
``raise NotImplementedError()``; outputs are cleared.  In the exercise version,
cells that now raise (TODO cells and check cells) get nbval's
``raises-exception`` tag, so CI can prove that a blank exercise fails its checks.

    python -m cloudlab.authoring.generate           # write exercises/
    python -m cloudlab.authoring.generate --check   # exit 1 if exercises/ is stale
    python -m cloudlab.authoring.generate --strip   # also clear outputs in notebooks/ and solutions/

Standard library only; the output is byte-for-byte deterministic.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from pathlib import Path

from . import BANNER_TAG, CHECK_TAG, RAISES_TAG, TODO_TAG

ROOT = Path(__file__).resolve().parent.parent.parent
BEGIN = re.compile(r"^(\s*)### BEGIN SOLUTION\s*$")
END = re.compile(r"^\s*### END SOLUTION\s*$")


class GeneratorError(ValueError):
    pass


def source_text(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def blank_solution(text: str, where: str = "") -> tuple[str, int]:
    """Replace each solution block; return (new text, number of blocks)."""
    out, n, inside, indent = [], 0, False, ""
    for i, line in enumerate(text.split("\n"), 1):
        m = BEGIN.match(line)
        if m:
            if inside:
                raise GeneratorError(f"{where} line {i}: BEGIN SOLUTION inside another solution block")
            inside, indent, n = True, m.group(1), n + 1
            out.append(f"{indent}# TODO: your code here (then run this cell and the check below it)")
            out.append(f"{indent}raise NotImplementedError()")
            continue
        if END.match(line):
            if not inside:
                raise GeneratorError(f"{where} line {i}: END SOLUTION without BEGIN SOLUTION")
            inside = False
            continue
        if not inside:
            out.append(line)
    if inside:
        raise GeneratorError(f"{where}: BEGIN SOLUTION is never closed by END SOLUTION")
    return "\n".join(out), n


def clean_cell(cell: dict) -> dict:
    cell = copy.deepcopy(cell)
    if cell.get("cell_type") == "code":
        cell["outputs"] = []
        cell["execution_count"] = None
    meta = cell.get("metadata", {})
    for k in ("execution", "collapsed", "scrolled", "jp-MarkdownHeadingCollapsed"):
        meta.pop(k, None)
    cell["metadata"] = meta
    cell["source"] = source_text(cell)
    return cell


def clean_notebook(nb: dict) -> dict:
    nb = copy.deepcopy(nb)
    nb["cells"] = [clean_cell(c) for c in nb["cells"]]
    keep = {k: v for k, v in nb.get("metadata", {}).items() if k in ("kernelspec", "language_info")}
    if "language_info" in keep:
        keep["language_info"] = {"name": "python"}
    nb["metadata"] = keep
    return nb


def exercise_from_solution(nb: dict, stem: str) -> dict:
    nb = clean_notebook(nb)
    cells = []
    blocks = 0
    for idx, cell in enumerate(nb["cells"]):
        if BANNER_TAG in cell.get("metadata", {}).get("tags", []):
            continue
        if cell["cell_type"] == "code":
            text, n = blank_solution(cell["source"], f"solutions/{stem}.ipynb cell {idx}")
            tags = [t for t in cell["metadata"].get("tags", []) if t != RAISES_TAG]
            if n:
                blocks += n
                cell["source"] = text
                tags.append(TODO_TAG)
                if not text.lstrip().startswith("%%writefile"):
                    tags.append(RAISES_TAG)
            if CHECK_TAG in tags:
                tags.append(RAISES_TAG)
            if tags:
                cell["metadata"]["tags"] = sorted(set(tags), key=tags.index)
            else:
                cell["metadata"].pop("tags", None)
        elif "### BEGIN SOLUTION" in cell["source"]:
            raise GeneratorError(f"solutions/{stem}.ipynb cell {idx}: solution blocks belong in code cells")
        cells.append(cell)
    if blocks == 0:
        raise GeneratorError(f"solutions/{stem}.ipynb has no ### BEGIN SOLUTION block: nothing to exercise")
    banner = {
        "cell_type": "markdown",
        "id": "exercise-banner",
        "source": (
            f"> **Exercise notebook.** Replace each `raise NotImplementedError()` with your code, run the cell, "
            f"then run the check cell below it: it reads the real result and tells you what is right and what "
            f"is missing (`cloudlab.checks.hint(...)` reveals the next hint). The worked answers are in "
            f"[`solutions/{stem}.ipynb`](../solutions/{stem}.ipynb)."
        ),
        # For course authors (not shown): this file is generated from solutions/ by `make exercises`.
        "metadata": {"tags": [BANNER_TAG], "generated_from": f"solutions/{stem}.ipynb"},
    }
    nb["cells"] = [banner] + cells
    return nb


def dumps(nb: dict) -> str:
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def generate(root: Path = ROOT, check: bool = False, strip: bool = False) -> list[str]:
    """Write (or, with check=True, compare) exercises/; return the paths that differ."""
    sol_dir, ex_dir = root / "solutions", root / "exercises"
    stale = []
    wanted = {}
    for sol in sorted(sol_dir.glob("*.ipynb")):
        nb = json.loads(sol.read_text())
        wanted[ex_dir / sol.name] = dumps(exercise_from_solution(nb, sol.stem))
        if strip:
            clean = dumps(clean_notebook(nb))
            if sol.read_text() != clean:
                stale.append(str(sol.relative_to(root)))
                if not check:
                    sol.write_text(clean)
    if strip:
        for nbp in sorted((root / "notebooks").glob("*.ipynb")):
            clean = dumps(clean_notebook(json.loads(nbp.read_text())))
            if nbp.read_text() != clean:
                stale.append(str(nbp.relative_to(root)))
                if not check:
                    nbp.write_text(clean)
    for path, text in wanted.items():
        if not path.exists() or path.read_text() != text:
            stale.append(str(path.relative_to(root)))
            if not check:
                path.parent.mkdir(exist_ok=True)
                path.write_text(text)
    for extra in sorted(ex_dir.glob("*.ipynb")) if ex_dir.exists() else []:
        if extra not in wanted:
            stale.append(str(extra.relative_to(root)) + " (no solution)")
            if not check:
                extra.unlink()
    return stale


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="only report; exit 1 if anything is stale")
    ap.add_argument("--strip", action="store_true", help="also clear outputs of notebooks/ and solutions/")
    args = ap.parse_args(argv)
    try:
        changed = generate(check=args.check, strip=args.strip)
    except (GeneratorError, ValueError) as e:
        print(f"generate: {e}", file=sys.stderr)
        return 2
    if args.check and changed:
        print("Not in sync with solutions/ (run `make exercises` and commit):\n  " + "\n  ".join(changed))
        return 1
    for c in changed:
        print(("stale: " if args.check else "wrote: ") + c)
    return 0


if __name__ == "__main__":
    sys.exit(main())
