"""Docstring reST as plain terminal text, for ``losskit explain``.

Inline markup loses its markers (````x````, ``:func:`x```, ``:math:`x```, ``*x*``, ``**x**``);
``~a.b.c`` targets keep their last part and ``text <target>`` its text. A paragraph's closing
``::`` becomes ``:``, and the literal block under it (a formula) is kept verbatim, indentation
included. Directive lines (``.. note::``) become a label (``Note:``), or disappear when they only
frame their content (``.. math::``, ``.. code-block:: python``).
"""

from __future__ import annotations

import re

__all__ = ["plain_text"]

_ROLE = re.compile(r":(?:\w+:)*\w+:`(~?)([^`<]*?)\s*(?:<[^>]*>)?`")
_LITERAL = re.compile(r"``(.+?)``", re.S)
_STRONG = re.compile(r"\*\*(\S(?:[^*]*?\S)?)\*\*")
_EMPHASIS = re.compile(r"(?<![\w*])\*(\S(?:[^*]*?\S)?)\*(?![\w*])")
_DEFAULT_ROLE = re.compile(r"`([^`]+)`")
_DIRECTIVE = re.compile(r"^(\s*)\.\.\s+([\w-]+)::\s*(.*)$")
_FRAMING = ("math", "code", "code-block", "sourcecode", "doctest", "testcode")


def _role(match: re.Match[str]) -> str:
    text = match.group(2)
    return text.rsplit(".", 1)[-1] if match.group(1) else text


def _inline(line: str) -> str:
    line = _ROLE.sub(_role, line)
    line = _LITERAL.sub(r"\1", line)
    line = _STRONG.sub(r"\1", line)
    line = _EMPHASIS.sub(r"\1", line)
    return _DEFAULT_ROLE.sub(r"\1", line)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def plain_text(text: str) -> str:
    """``text`` (reST) without its markup; see the module docstring for the rules."""
    out: list[str] = []
    prose: list[str] = []  # lines for inline markup, which may span lines (````a\nb````)
    literal_under: int | None = None  # indentation of the paragraph that opened a literal block

    def flush() -> None:
        out.extend(_inline("\n".join(prose)).split("\n") if prose else [])
        prose.clear()

    for line in text.splitlines():
        if literal_under is not None:
            if not line.strip() or _indent(line) > literal_under:
                out.append(line)
                continue
            literal_under = None
        directive = _DIRECTIVE.match(line)
        if directive:
            space, name, argument = directive.groups()
            if name in _FRAMING:  # its content is verbatim
                flush()
                literal_under = len(space)
            else:
                prose.append(f"{space}{name.capitalize()}: {argument}".rstrip())
            continue
        if line.rstrip().endswith("::"):
            head = line.rstrip()[:-2]
            if head.strip():
                prose.append(head.rstrip() + ("" if head.endswith(" ") else ":"))
            flush()
            literal_under = _indent(line)
            continue
        prose.append(line)
    flush()
    return "\n".join(out)
