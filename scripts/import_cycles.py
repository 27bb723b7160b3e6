#!/usr/bin/env python3
"""Finds import circles between the modules of each crate: module A names something of module B (`crate::b::…`,
`super::…`, `self::…`) while B, directly or through others, names something of A. A circle means neither module
can be read, moved or tested without the other; the shared name belongs in a module below both.

Edges come from paths in the code (use lines and inline paths), resolved to the longest module that exists. A
module's own children and `#[cfg(test)]` test modules are left out: a parent declares its children, and tests
may reach anywhere. Run by .ci/run; exits 1 and prints each circle when there is one.
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PATH = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
USE_GROUP = re.compile(r"\buse\s+(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)*)::\{([^;]*)\};", re.S)


def module_of(src: Path, file: Path) -> tuple:
    parts = list(file.relative_to(src).with_suffix("").parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def without_tests(text: str) -> str:
    """The file up to its `#[cfg(test)] mod tests` block (by convention the last item)."""
    marker = re.search(r"#\[cfg\(test\)\]\s*(pub(\([a-z]+\))?\s+)?mod\s+\w+\s*\{", text)
    return text[: marker.start()] if marker else text


def strip_comments(text: str) -> str:
    return re.sub(r"//[^\n]*", "", text)


def paths_in(text: str):
    for group in USE_GROUP.finditer(text):
        base, prefix, inner = group.group(1), group.group(2), group.group(3)
        for item in re.split(r"[,\s]+", re.sub(r"\{[^}]*\}", "", inner)):
            name = item.split("::")[0].strip()
            if name and name not in ("self",):
                yield base, [p for p in prefix.split("::") if p] + [name] + item.split("::")[1:]
        text = text.replace(group.group(0), "")
    for match in PATH.finditer(text):
        yield match.group(1), [p for p in match.group(2).split("::") if p]


def resolve(here: tuple, base: str, parts: list, modules: set) -> tuple:
    if base == "crate":
        start = ()
    elif base == "self":
        start = here
    else:
        start = here[:-1]
        while parts and parts[0] == "super":
            start, parts = start[:-1], parts[1:]
    best = start
    for n in range(1, len(parts) + 1):
        candidate = start + tuple(parts[:n])
        if candidate in modules:
            best = candidate
    return best


def circles(graph: dict) -> list:
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in list(graph):
        if node not in index:
            visit(node)
    return found


def main() -> int:
    failed = False
    for src in sorted(ROOT.glob("*/src")):
        files = sorted(src.rglob("*.rs"))
        modules = {module_of(src, f) for f in files}
        graph = {}
        for file in files:
            here = module_of(src, file)
            text = strip_comments(without_tests(file.read_text()))
            for base, parts in paths_in(text):
                there = resolve(here, base, parts, modules)
                # A module and its ancestors are one room (a parent declares and re-exports its children).
                if there[: len(here)] == here or here[: len(there)] == there:
                    continue
                graph.setdefault(here, set()).add(there)
        for circle in circles(graph):
            failed = True
            names = ", ".join("::".join(m) or "(root)" for m in circle)
            print(f"{src.parent.name}: import circle between {names}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
