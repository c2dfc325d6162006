"""How :mod:`.wronganswers` says what a wrong answer is: comments (read with the tokenizer), the case's id, the test's
name or setup, the helper's docstring, or the answer's own source with the case's values put in."""

from __future__ import annotations

import ast
import copy
import re


class Opaque:
    """A value the reader cannot compute (a lambda, a call): kept as its source text."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self):
        return self.text


def comment_map(text: str) -> dict[int, str]:
    """{line: its comment} from Python's tokenizer: real comments only, never a ``#`` inside a string."""
    import io
    import tokenize

    out: dict[int, str] = {}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.COMMENT:
                out[tok.start[0]] = tok.string.lstrip("#").strip()
    except (tokenize.TokenError, SyntaxError):
        pass
    return out


def _comments(comments: dict[int, str], first: int, last: int) -> list[str]:
    """The comments on lines first..last (1-based, inclusive), without formatter pragmas and section rules."""
    out = []
    for n in range(max(first, 1), last + 1):
        text = comments.get(n, "")
        if text and not re.match(r"^(fmt:|noqa|type:|-{3,}|={3,}|\d\d\.\d)", text):
            out.append(text)
    return out


def _plumbing(st: ast.stmt) -> bool:
    """A statement that sets a test up, not the learner's answer: imports, asserts, fixtures unpacked, clients."""
    if isinstance(st, ast.Assert | ast.Import | ast.ImportFrom):
        return True
    if isinstance(st, ast.Assign):
        names = {n.id for t in st.targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        src = ast.unparse(st.value)
        return isinstance(st.value, ast.Name) or "check" in names or bool(re.search(r"\.client\(|scenario\(", src))
    return isinstance(st, ast.Assign | ast.AugAssign) or bool(re.match(r"^\w+\.quiet = ", ast.unparse(st)))


def _pretty(name: str) -> str:
    return name.strip("_").replace("_", " ").replace("-", " ")


class Describer:
    """The describing half of :class:`.wronganswers.Reader` (which sets ``comments``, ``lines``, ``defs``,
    ``rejecters`` and ``_case_words``)."""

    def _describe(self, fn, call, steps: list[int], env: dict, case_id: str, first: int, last: int) -> str:
        said = _comments(self.comments, call.lineno, call.end_lineno or call.lineno)
        if first:  # a parametrize case: its own comments, else the comment lines just above it
            own = _comments(self.comments, first, last)
            above = []
            k = first - 1
            while k > 0 and self.lines[k - 1].strip().startswith("#"):
                above.insert(0, self.lines[k - 1].strip().lstrip("#").strip())
                k -= 1
            said = own or above or said
        elif not said:  # a step of a sequential test: the comments of the setup since the previous step
            before = [s for s in steps if s < call.lineno]
            start = (before[-1] + 1) if before else fn.body[0].lineno
            said = _comments(self.comments, start, call.lineno - 1)
        parts = [s for s in said if s]
        if not parts and not first and not case_id:
            parts = self._step(fn, call, steps)
        if not parts:
            parts = self._what(fn, call, env)
        if any("not defined" in w for w in self._case_words):
            parts = ["the task left blank (nothing defined yet)"]
        text = "; ".join(dict.fromkeys(p for p in parts if p))
        if case_id and _pretty(case_id).lower() not in text.lower():
            text = f"{_pretty(case_id)}: {text}" if text else _pretty(case_id)
        return (text or _pretty(fn.name.removeprefix("test_")))[:300]

    def _step(self, fn, call, steps: list[int]) -> list[str]:
        """A sequential test's step without a comment: the test's docstring or name when it holds this one call,
        else the setup statements since the previous step (their source)."""
        calls = [n for n in ast.walk(fn) if isinstance(n, ast.Call) and getattr(n.func, "id", "") in self.rejecters]
        if len(calls) == 1:
            doc = ast.get_docstring(fn)
            name = _pretty(fn.name.removeprefix("test_"))
            if doc or re.search(r"\b(rejects?|refuses?|fails?|without|wrong|when|if|a|an)\b", name):
                return [doc.split("\n")[0] if doc else name]
        before = [s for s in steps if s < call.lineno]
        start = (before[-1] + 1) if before else fn.body[0].lineno
        setup = [ast.unparse(st) for st in fn.body if start <= st.lineno < call.lineno and not _plumbing(st)]
        if not setup and not before:
            ns = call.args[1] if len(call.args) > 1 and self.rejecters[call.func.id] == "plain" else None
            ns = next((k.value for k in call.keywords if k.arg == "ns"), ns)
            empty = ns is None or (isinstance(ns, ast.Constant) and ns.value is None) or ast.unparse(ns) == "{}"
            return ["nothing done yet"] if empty else []
        text = "; ".join(setup)
        return [f"`{text}`" if len(text) <= 200 else f"`{text[:197]}...`"] if setup else []

    def _answer_source(self, call, env: dict) -> str:
        """The namespace the check gets, with the case's values put in:
        ``{'recommend_for': _recommender(agg='max')}``."""
        if self.rejecters[call.func.id] != "plain" or len(call.args) < 2:
            return ""
        names = {n.id for n in ast.walk(call.args[1]) if isinstance(n, ast.Name)}
        if not names & set(env):
            return ""

        class Put(ast.NodeTransformer):
            def visit_Name(self, node):
                v = env.get(node.id)
                return v if isinstance(v, ast.AST) else node

            def visit_Call(self, node):
                self.generic_visit(node)
                keywords = []
                for k in node.keywords:
                    if (
                        k.arg is None
                        and isinstance(k.value, ast.Dict)
                        and all(isinstance(x, ast.Constant) for x in k.value.keys)
                    ):
                        keywords += [ast.keyword(x.value, v) for x, v in zip(k.value.keys, k.value.values, strict=True)]
                    else:
                        keywords.append(k)
                node.keywords = keywords
                return node

        text = ast.unparse(Put().visit(copy.deepcopy(call.args[1])))
        return f"`{text}`" if len(text) <= 200 else f"`{text[:197]}...`"

    def _what(self, fn, call, env: dict) -> list[str]:
        """No comment says what the wrong answer is: the helper's docstring, or the answer's own source."""
        if len(call.args) > 1:  # {"restore_drill": DRILL_WRONG["default parameter group"]}: the key says it
            keys = [n.slice.value for n in ast.walk(call.args[1]) if isinstance(n, ast.Subscript)
                    and isinstance(n.slice, ast.Constant) and isinstance(n.slice.value, str)]  # fmt: skip
            if len(keys) == 1 and len(keys[0]) < 100:
                return [keys[0]]
        put = self._answer_source(call, env)
        keyed = env and all(isinstance(v, ast.Constant) and isinstance(v.value, str) for v in env.values())
        if put and not keyed and not any(isinstance(v, ast.Name) and v.id in self.defs for v in env.values()):
            return [put]
        words_args = call.args[1:] if self.rejecters[call.func.id] == "words-first" else call.args[2:]
        in_words = {n.id for a in words_args for n in ast.walk(a) if isinstance(n, ast.Name)}
        in_rest = {n.id for a in call.args[:1] + call.args[1:2] for n in ast.walk(a) if isinstance(n, ast.Name)}
        in_body = {n.id for n in ast.walk(fn) if isinstance(n, ast.Name)} - in_words
        shown = {k: v for k, v in env.items() if k in in_rest | in_body or k not in in_words}
        values = list(shown.items())
        if not values and len(call.args) > 1 and not (self.rejecters[call.func.id] == "words-first"):
            values = [("", call.args[1])]
        out = []
        for key, v in values:
            if not isinstance(v, ast.AST) or (isinstance(v, ast.Constant) and v.value is None):
                continue
            if key and isinstance(v, ast.Dict) and not v.keys:  # an empty answer: `resources={}`
                out.append(f"`{key}={{}}`")
                continue
            if isinstance(v, ast.Dict) and not v.keys:
                continue
            name = v.id if isinstance(v, ast.Name) else ""
            if isinstance(v, ast.Constant) and isinstance(v.value, str) and len(v.value) < 60 and "\n" not in v.value:
                out.append(_pretty(v.value))
            elif name in self.defs:
                out.append(self._helper_doc(name))
            else:
                helpers = [n.id for n in ast.walk(v) if isinstance(n, ast.Name) and n.id in self.defs]
                docs = [self._helper_doc(h, pretty=False) for h in helpers]
                doc = next((d for d in docs if d), "")
                if not doc and isinstance(v, ast.Dict) and len(helpers) == 1 and len(v.keys) == 1:
                    doc = f"`{helpers[0]}`"  # {"GcsStore": GcsSubstring}: the class's name says it
                src = (f"{key}=" if key and len(shown) == 1 else "") + ast.unparse(v)
                out.append(doc or (f"`{src}`" if len(src) <= 160 else f"`{src[:157]}...`"))
        return out

    def _helper_doc(self, name: str, pretty: bool = True) -> str:
        d = self.defs[name]
        doc = ast.get_docstring(d)
        if doc:
            return doc.split("\n")[0].rstrip(".")
        said = _comments(self.comments, d.lineno, d.lineno)
        if said:
            return said[0]
        return _pretty(name) if pretty else ""
