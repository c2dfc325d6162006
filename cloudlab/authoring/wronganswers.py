"""The wrong answers learners are likely to give, read from the wrong-answer tests, so the notes cannot drift.

Every check's wrong answers live in ``tests/test_lessonNN.py``, each proved rejected through
``tests/checktest.py``'s ``rejected(check, ns, *words)``. This module reads those files with :mod:`ast` (nothing
is imported or run) and returns one :class:`WrongAnswer` per call, and per case of a parametrized test:

* the **check** (its id from the ``@check("NN.k", ...)`` that decorates the function called);
* the **words** the check's message must contain (a literal, a parametrize value, a module constant indexed by
  the case, or, where a word is built at run time, the expression's text);
* a **description** of the wrong answer: the comment on the case or on the call, the lines of setup before a
  call, the case's id, the docstring of the helper it uses, or the case's own source, in that order.

Which calls ran, and with which words, is recorded at run time (``CLOUDLAB_REJECTED_LOG``, written by
``checktest.rejected``); :func:`unseen` compares such a record with this reading, so a test written in a form
this reader does not follow fails ``make test`` instead of going missing from the notes.
"""

from __future__ import annotations

import ast
import copy
import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path

from . import outline
from .wronganswers_text import Describer, Opaque, _pretty, comment_map  # noqa: F401 (Opaque: part of the API)

ROOT = outline.ROOT
TESTS = ROOT / "tests"
REJECTERS = ("rejected", "rejected_in_missing", "rejected_in_one_missing_line")


@dataclass(frozen=True)
class WrongAnswer:
    lesson: str
    check_id: str
    description: str
    words: tuple[str, ...]
    test: str  # test function name, with the case id in brackets
    file: str  # tests/test_lessonNN.py
    line: int  # the line of the rejected(...) call
    end_line: int = 0  # its last line (a call may span several)

    @property
    def key(self) -> tuple:
        return (self.file, self.line, self.check_id, self.words)


class Reader(Describer):
    def __init__(self, path: Path):
        self.path = path
        self.text = path.read_text()
        self.lines = self.text.splitlines()
        self.comments = comment_map(self.text)
        self.tree = ast.parse(self.text)
        self.lesson = re.search(r"test_lesson(\d\d)", path.name).group(1)
        self.consts: dict[str, ast.AST] = {}
        self.defs: dict[str, ast.AST] = {}
        self.rejecters: dict[str, str] = {}  # local name -> "plain" | "words-first"
        self.checks = outline.check_ids()
        for node in self.tree.body:
            if isinstance(node, ast.ImportFrom) and node.module and (path.parent / f"{node.module}.py").exists():
                if node.module != "checktest":  # wrong answers kept in a module of their own (lesson12_answers)
                    self._import(path.parent / f"{node.module}.py", node.names)
            if isinstance(node, ast.ImportFrom) and node.module == "checktest":
                for a in node.names:
                    if a.name in REJECTERS:
                        self.rejecters[a.asname or a.name] = "plain"
            elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                self.consts[node.targets[0].id] = node.value
            elif isinstance(node, ast.FunctionDef | ast.ClassDef):
                self.defs[node.name] = node
        for name, fn in self.defs.items():  # a module's own wrapper: def rejected(check, *words, ns=None)
            if isinstance(fn, ast.FunctionDef) and "checktest.rejected" in ast.unparse(fn) and fn.args.vararg:
                self.rejecters[name] = "words-first"

    def _import(self, module: Path, names) -> None:
        """The constants and helpers a test imports from a module beside it, without their line numbers (those
        belong to the other file: no comment of this file describes them)."""
        wanted = {a.name: a.asname or a.name for a in names}
        tree = ast.parse(module.read_text())
        for node in tree.body:
            name = None
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                name, value = node.targets[0].id, node.value
            elif isinstance(node, ast.FunctionDef | ast.ClassDef):
                name, value = node.name, node
            if name in wanted:
                value = copy.deepcopy(value)
                for n in ast.walk(value):
                    for attr in ("lineno", "end_lineno"):
                        if hasattr(n, attr):
                            setattr(n, attr, None)
                target = self.consts if isinstance(node, ast.Assign) else self.defs
                target[wanted[name]] = value

    # ------------------------------------------------------------------ a tiny evaluator
    def value(self, node, env: dict, local: dict, depth: int = 0):
        if depth > 12:
            return Opaque(ast.unparse(node))
        ev = lambda n: self.value(n, env, local, depth + 1)  # noqa: E731
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Tuple | ast.List):
            return tuple(ev(e) for e in node.elts)
        if isinstance(node, ast.Dict):
            try:
                return {ev(k): ev(v) for k, v in zip(node.keys, node.values, strict=True) if k is not None}
            except TypeError:
                return Opaque(ast.unparse(node))
        if isinstance(node, ast.Name):
            if node.id in env:
                return ev(env[node.id]) if isinstance(env[node.id], ast.AST) else env[node.id]
            if node.id in local:
                return local[node.id] if not isinstance(local[node.id], ast.AST) else ev(local[node.id])
            if node.id in self.consts:
                return ev(self.consts[node.id])
            return Opaque(node.id)
        if isinstance(node, ast.Subscript):
            container, index = ev(node.value), ev(node.slice)
            try:
                return container[index]
            except (TypeError, KeyError, IndexError):
                return Opaque(ast.unparse(node))
        if isinstance(node, ast.Starred):
            return ev(node.value)
        if isinstance(node, ast.JoinedStr):
            parts = []
            for v in node.values:
                inner = ev(v.value) if isinstance(v, ast.FormattedValue) else v.value
                parts.append(str(inner) if isinstance(inner, str | int | float) else "…")
            return "".join(parts)
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") in ("sorted", "list", "tuple") and node.args:
            inner = ev(node.args[0])
            if isinstance(inner, dict | tuple):
                keys = list(inner)
                return tuple(sorted(keys) if node.func.id == "sorted" else keys)
        return Opaque(ast.unparse(node))

    # ------------------------------------------------------------------ calls
    def calls(self) -> list[WrongAnswer]:
        out = []
        for fn in self.tree.body:
            if isinstance(fn, ast.FunctionDef) and fn.name.startswith("test_"):
                out += self._in_test(fn)
                out += self._through_helpers(fn)
        return out

    def _rejecter_calls(self, fn) -> list[ast.Call]:
        calls = [n for n in ast.walk(fn) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
        return [n for n in calls if n.func.id in self.rejecters]

    def _through_helpers(self, fn: ast.FunctionDef) -> list[WrongAnswer]:
        """A test that hands its wrong answers to a helper of the module (``_file_check(in_tmp, check, name,
        right, WRONG)``): the helper's rejected(...) calls, with its parameters bound to this call's arguments. At
        run time they are recorded at this call's line (the test's frame), so that is their line here too."""
        local = self._locals(fn)
        out = []
        for site in [n for n in ast.walk(fn) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]:
            helper = self.defs.get(site.func.id)
            if not isinstance(helper, ast.FunctionDef) or helper.name.startswith("test_"):
                continue
            inner = self._rejecter_calls(helper)
            if not inner or site.func.id in self.rejecters:
                continue
            params = [a.arg for a in helper.args.args]
            defaults = dict(zip(params[len(params) - len(helper.args.defaults) :], helper.args.defaults, strict=True))
            bound = {**defaults, **dict(zip(params, site.args, strict=False))}
            bound.update({k.arg: k.value for k in site.keywords if k.arg})
            bound = {k: (self._as_dict(v, {}, local) or v) for k, v in bound.items()}
            hl = self._locals(helper)
            for call in inner:
                word_nodes = call.args[2:]
                for loop_env, label in self._loop_bindings(helper, call, bound, hl):
                    env = {**bound, **loop_env}
                    words = self._words(word_nodes, env, hl)
                    if words is None:
                        continue
                    check = self._check_id(call.args[0], env, hl) if call.args else ""
                    desc = label or _pretty(fn.name.removeprefix("test_"))
                    out.append(WrongAnswer(self.lesson, check, desc, words, fn.name, self._rel(), site.lineno,
                                           site.end_lineno))  # fmt: skip
        return out

    def _rel(self) -> str:
        return str(self.path.relative_to(ROOT)) if self.path.is_relative_to(ROOT) else str(self.path)

    def _as_dict(self, node, env: dict, local: dict, depth: int = 0) -> ast.Dict | None:
        """A dict the test builds (a literal, a module constant, ``dict(X)``, a local plus its ``d[k] = v``
        additions) as one literal, or None."""
        if depth > 8 or node is None:
            return None
        if isinstance(node, ast.Dict):
            return node
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "dict" and len(node.args) == 1:
            return self._as_dict(node.args[0], env, local, depth + 1)
        if isinstance(node, ast.Name):
            target = env.get(node.id) if node.id in env else local.get(node.id, self.consts.get(node.id))
            base = self._as_dict(target, env if node.id not in env else {}, local, depth + 1)
            extra = local.get(f"{node.id}[]", [])
            if base is not None and extra:  # d[k] = v: a new key, or a new value for a key it had
                items = {ast.unparse(k): (k, v) for k, v in zip(base.keys, base.values, strict=True) if k is not None}
                items.update({ast.unparse(k): (k, v) for k, v in extra})
                return ast.Dict(keys=[k for k, _ in items.values()], values=[v for _, v in items.values()])
            return base
        return None

    def _locals(self, fn: ast.FunctionDef) -> dict:
        local: dict = {}
        for node in ast.walk(fn):
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                t = node.targets[0]
                if isinstance(t, ast.Name):
                    local[t.id] = node.value
                elif isinstance(t, ast.Subscript) and isinstance(t.value, ast.Name):
                    local.setdefault(f"{t.value.id}[]", []).append((t.slice, node.value))  # d[k] = v
                elif isinstance(t, ast.Tuple) and all(isinstance(e, ast.Name) for e in t.elts):
                    if isinstance(node.value, ast.Tuple) and len(node.value.elts) == len(t.elts):
                        for e, v in zip(t.elts, node.value.elts, strict=True):
                            local[e.id] = v
                    else:
                        for i, e in enumerate(t.elts):
                            local[e.id] = ast.Subscript(node.value, ast.Constant(i))
        return local

    def _cases(self, fn: ast.FunctionDef) -> tuple[list[str], list[tuple[dict, str, int, int]]]:
        """(argnames, [(env, id, first line, last line)]) of the function's parametrize decorators (a product)."""
        groups = []
        for d in fn.decorator_list:
            if not (isinstance(d, ast.Call) and ast.unparse(d.func).endswith("parametrize") and len(d.args) >= 2):
                continue
            names = self.value(d.args[0], {}, {})
            names = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
            ids_node = next((k.value for k in d.keywords if k.arg == "ids"), None)
            ids = self.value(ids_node, {}, {}) if ids_node is not None else None
            argvalues = d.args[1]
            if isinstance(argvalues, ast.Name) and isinstance(self.consts.get(argvalues.id), ast.List | ast.Tuple):
                argvalues = self.consts[argvalues.id]
            if isinstance(argvalues, ast.List | ast.Tuple):
                items = argvalues.elts
            else:
                keys = self.value(argvalues, {}, {})
                items = [ast.Constant(k) for k in keys] if isinstance(keys, tuple) else []
            cases = []
            for i, item in enumerate(items):
                case_id = ids[i] if isinstance(ids, tuple) and i < len(ids) else ""
                if isinstance(item, ast.Call) and ast.unparse(item.func).endswith("param"):
                    case_id = next((k.value.value for k in item.keywords if k.arg == "id"), case_id)
                    item = ast.Tuple(item.args) if len(names) > 1 else item.args[0]
                vals = item.elts if len(names) > 1 and isinstance(item, ast.Tuple) else [item]
                env = dict(zip(names, vals, strict=False))
                if not case_id and isinstance(item, ast.Constant) and isinstance(item.value, str):
                    case_id = item.value
                cases.append((env, str(case_id), getattr(item, "lineno", 0), getattr(item, "end_lineno", 0)))
            groups.append(cases)
        if not groups:
            return [], [({}, "", 0, 0)]
        product = []
        for combo in itertools.product(*groups):
            env = {k: v for c in combo for k, v in c[0].items()}
            product.append((env, "-".join(c[1] for c in combo if c[1]), combo[0][2], combo[0][3]))
        return [], product

    def _check_id(self, node, env: dict, local: dict) -> str:
        name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")
        if not name.startswith("check_"):
            target = env.get(name) or local.get(name)
            if isinstance(target, ast.AST):
                return self._check_id(target, env, local)
            return ""
        return self.checks.get(f"lesson{self.lesson}.{name}", "")

    def _in_test(self, fn: ast.FunctionDef) -> list[WrongAnswer]:
        local = self._locals(fn)
        _, cases = self._cases(fn)
        calls = [
            n
            for n in ast.walk(fn)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in self.rejecters
        ]
        # every statement line that closes a step: a rejected(...) call, or a check called for the solution
        steps = sorted(
            n.lineno
            for n in ast.walk(fn)
            if isinstance(n, ast.Call) and (n in calls or re.match(r"^(check|.*check_\w+)$", ast.unparse(n.func)))
        )
        out = []
        for call in sorted(calls, key=lambda c: c.lineno):
            words_first = self.rejecters[call.func.id] == "words-first"
            word_nodes = call.args[1:] if words_first else call.args[2:]
            for env, case_id, first, last in cases:
                for loop_env, label in self._loop_bindings(fn, call, env, local):
                    full = {**env, **loop_env}
                    words = self._words(word_nodes, full, local)
                    if words is None:
                        continue  # a parametrize case that is the solution (words None)
                    check = self._check_id(call.args[0], full, local) if call.args else ""
                    self._case_words = words
                    desc = label or self._describe(fn, call, steps, full, case_id, first, last)
                    test = f"{fn.name}[{case_id}]" if case_id else fn.name
                    out.append(
                        WrongAnswer(self.lesson, check, desc, words, test, self._rel(), call.lineno, call.end_lineno)
                    )
        return out

    def _loop_bindings(self, fn, call, env: dict, local: dict) -> list[tuple[dict, str]]:
        """[(binding, label)] of the loop around ``call``: ``for fn, ns in [(check_a, {}), ...]`` (a literal list),
        ``for label, text in WRONG.items()``, ``for ns in WRONG.values()``, ``for key in WRONG`` (a dict: the label
        is its key, which says what the wrong answer is). [({}, "")] outside a loop."""
        for node in ast.walk(fn):
            if not (isinstance(node, ast.For) and any(c is call for c in ast.walk(node))):
                continue
            target = node.target
            if isinstance(node.iter, ast.List | ast.Tuple) and isinstance(target, ast.Tuple):
                names = [e.id for e in target.elts if isinstance(e, ast.Name)]
                return [(dict(zip(names, item.elts, strict=False)), "") for item in node.iter.elts]
            it, how = node.iter, "keys"
            if isinstance(it, ast.Call) and isinstance(it.func, ast.Attribute) and it.func.attr in ("items", "values"):
                it, how = it.func.value, it.func.attr
            d = self._as_dict(it, env, local)
            if d is None:
                continue
            out = []
            for k, v in zip(d.keys, d.values, strict=True):
                label = k.value if isinstance(k, ast.Constant) and isinstance(k.value, str) else ""
                if how == "items" and isinstance(target, ast.Tuple) and len(target.elts) == 2:
                    binding = {target.elts[0].id: k, target.elts[1].id: v}
                elif isinstance(target, ast.Name):
                    binding = {target.id: v if how == "values" else k}
                else:
                    continue
                out.append((binding, label))
            return out
        return [({}, "")]

    def _words(self, nodes, env: dict, local: dict) -> tuple[str, ...] | None:
        words: list[str] = []
        for n in nodes:
            v = self.value(n, env, local)
            if v is None:
                return None
            items = v if isinstance(v, tuple) else (v,)
            words += [str(w) if not isinstance(w, Opaque) else f"<{w.text}>" for w in items]
        return tuple(words)


def read(root: Path = ROOT) -> list[WrongAnswer]:
    """Every wrong answer of every lesson's tests, in file order."""
    out = []
    for path in sorted((root / "tests").glob("test_lesson[0-9][0-9].py")):
        out += Reader(path).calls()
    return out


def by_check(answers: list[WrongAnswer]) -> dict[str, list[WrongAnswer]]:
    out: dict[str, list[WrongAnswer]] = {}
    for a in answers:
        out.setdefault(a.check_id, []).append(a)
    return out


def matches(recorded: dict, answer: WrongAnswer) -> bool:
    """A recorded call (file, line, check, words) is this answer: the same place and check, and every word
    equal, or matching a word built at run time (``…`` in an f-string, ``<expr>`` for an expression)."""
    if (recorded["file"], recorded["check"]) != (answer.file, answer.check_id):
        return False
    if not answer.line <= recorded["line"] <= max(answer.line, answer.end_line):
        return False
    if len(recorded["words"]) != len(answer.words):
        return False
    for got, want in zip(recorded["words"], answer.words, strict=True):
        if want.startswith("<") and want.endswith(">"):
            continue
        pattern = ".*".join(re.escape(p) for p in want.split("…"))
        if not re.fullmatch(pattern, got, re.S):
            return False
    return True


def unseen(records: list[dict], answers: list[WrongAnswer] | None = None) -> list[dict]:
    """The recorded rejected(...) calls that no extracted wrong answer matches (the notes would miss them)."""
    answers = read() if answers is None else answers
    index: dict[str, list[WrongAnswer]] = {}
    for a in answers:
        index.setdefault(a.file, []).append(a)
    return [r for r in records if not any(matches(r, a) for a in index.get(r["file"], []))]


def read_records(paths) -> list[dict]:
    out = []
    for p in paths:
        try:
            out += [json.loads(ln) for ln in Path(p).read_text().splitlines() if ln.strip()]
        except (OSError, ValueError):
            continue
    return out
