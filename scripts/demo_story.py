"""The lines of a `make demo` step's log that tell the story, in the order they were written.

`python scripts/demo_story.py LOG PATTERN` prints every part of LOG that matches the regular
expression PATTERN, once, cleaned for reading: no logger names, dates without midnight times,
column lists as plain words, shares as percentages, metrics to three decimals, lines wrapped
to the terminal.
"""

from __future__ import annotations

import re
import shutil
import sys
import textwrap
from collections.abc import Iterable, Iterator
from pathlib import Path

INDENT = " " * 9
# A Python list of strings as logged, e.g. ['tenure_months', 'region'].
_LIST = re.compile(r"\[('[^']*'(?:, '[^']*')*)\]")
# A share of columns or rows: "drifted share 0.86", "(threshold 0.30)", "is below 0.30".
_SHARE = re.compile(r"\b(drifted share|threshold|is below) (0(?:\.\d+)?|1(?:\.0+)?)\b")
# A number with four or more decimals, e.g. 0.8002 or +0.1044, but not the seconds of a time.
_LONG_NUMBER = re.compile(r"(?<![\w.:])([+-]?)(\d+\.\d{4,})(?![\d.])")


def tidy(line: str) -> str:
    """One matched part of a log line, as the demo prints it."""
    line = re.sub(r" \[airflow\..*$", "", line)
    line = re.sub(r"^\] ", "", line)
    line = line.replace("T00:00:00+00:00", "")
    line = re.sub(r"^no drift: drifted share", "input drift: none, drifted share", line)
    line = _LIST.sub(lambda m: ", ".join(re.findall(r"'([^']*)'", m.group(1))), line)
    line = _SHARE.sub(lambda m: f"{m.group(1)} {float(m.group(2)):.0%}", line)
    return _LONG_NUMBER.sub(lambda m: f"{m.group(1)}{float(m.group(2)):.3f}", line)


def story(lines: Iterable[str], pattern: str) -> Iterator[str]:
    """Each distinct, tidied match of `pattern` in `lines`, first occurrence first."""
    wanted = re.compile(pattern)
    seen: set[str] = set()
    for line in lines:
        for match in wanted.finditer(line):
            text = tidy(match.group(0)).strip()
            if text and text not in seen:
                seen.add(text)
                yield text


def wrapped(text: str, width: int) -> str:
    """`text` indented under its step, continuation lines indented two more."""
    return textwrap.fill(
        text,
        width=max(width, 60),
        initial_indent=INDENT,
        subsequent_indent=INDENT + "  ",
        break_on_hyphens=False,
        break_long_words=False,
    )


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    log, pattern = argv
    width = shutil.get_terminal_size((100, 24)).columns - 1
    with Path(log).open(encoding="utf-8", errors="replace") as lines:
        for text in story(lines, pattern):
            print(wrapped(text, width))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
