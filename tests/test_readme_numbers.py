"""Every measured number in README.md is the one in the file that produced it.

The sources are committed files: the snapshots of `make paper`'s tables in docs/figures/ (exact copies of
figures/table1_ablation.md and figures/table2_comparison.md, written by `python -m sa_lib.cli.paper --snapshots
docs/figures`; figures/ itself is a build output that a clean clone does not have), checkpoints/MODEL_CARD.md
(written by `make model-card`) and BENCHMARKS.md.

How README.md ties a number to its source:

* A table right after a `<!-- numbers: PATH [column=value ...] -->` comment is compared cell by cell with the
  one table of PATH that has all its columns ("paper X" stands for "published (paper, COCO) X"). A README row
  is the source row whose first cell contains the row's key: its first `code` span, else its [n] citation,
  else its label up to a parenthesis; the column=value filters pick among rows (e.g. reference=top-1).
* A number in the prose is part of one of the CLAIMS below: a sentence with {} slots filled from the sources,
  which must appear in README.md word for word.
* Every other number with a decimal point or a % sign fails the test: a new number needs a source.

After a `make paper` or `make model-card` that changes a number: refresh the snapshots, then README.md.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
TABLE1, TABLE2 = "docs/figures/table1_ablation.md", "docs/figures/table2_comparison.md"
MODEL_CARD, BENCHMARKS = "checkpoints/MODEL_CARD.md", "BENCHMARKS.md"

MEASURED = re.compile(r"(?<![\w.])\d+(?:\.\d+)?%|(?<![\w.])\d+\.\d+(?![\w.])")  # 0.904, 22.01, 77%
NOT_MEASURED = re.compile(r"section[ -]\d+(?:\.\d+)+")  # the paper's section numbers
SOURCE_COMMENT = re.compile(r"<!--\s*numbers:\s*(.*?)\s*-->")


# ------------------------------------------------------------------ reading markdown


def strip_code(text: str) -> str:
    """The text with fenced code blocks, inline code spans and HTML comments blanked, line numbers kept."""
    text = re.sub(r"```.*?```", lambda m: "\n" * m.group().count("\n"), text, flags=re.S)
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    return re.sub(r"`[^`\n]*`", "``", text)


def split_row(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def tables(text: str) -> list[tuple[int, list[str], list[list[str]]]]:
    """Every markdown table of text: (index of its header line, header cells, body rows)."""
    lines, found, i = text.splitlines(), [], 0
    while i < len(lines) - 1:
        if lines[i].lstrip().startswith("|") and re.fullmatch(r"\s*\|[\s:|-]+\|\s*", lines[i + 1]):
            start, header, rows = i, split_row(lines[i]), []
            i += 2
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                rows.append(split_row(lines[i]))
                i += 1
            found.append((start, header, rows))
        else:
            i += 1
    return found


def read(path: str) -> str:
    file = ROOT / path
    assert file.is_file(), f"{path} is missing (the README's numbers come from it)"
    return file.read_text()


def source_column(column: str) -> str:
    return "published (paper, COCO) " + column[len("paper "):] if column.startswith("paper ") else column


def row_key(label: str) -> str:
    code = re.search(r"`([^`]+)`", label)
    citation = re.search(r"\[\d+\]", label)
    return (code.group(1) if code else citation.group() if citation else label.split("(")[0]).strip().lower()


def source_row(path: str, columns: list[str], filters: dict[str, str], label: str) -> dict[str, str]:
    """The row of PATH's table that the README row `label` quotes, as {column: cell}."""
    wanted = [source_column(c) for c in columns[1:]] + list(filters)
    candidates = [(header, rows) for _, header, rows in tables(read(path)) if set(wanted) <= set(header)]
    assert len(candidates) == 1, f"{path}: {len(candidates)} tables have the columns {wanted}"
    header, rows = candidates[0]
    key = row_key(label)
    kept = [row for row in rows if all(dict(zip(header, row)).get(k) == v for k, v in filters.items())]
    if re.search(r"`[^`]+`", label):  # a name: the whole cell or a code span, so demo-super is not demo-super-paper-qk
        chosen = [row for row in kept if row[0].lower() == key or f"`{key}`" in row[0].lower()]
    else:  # a citation or a label's words: anywhere in the cell
        chosen = [row for row in kept if key in row[0].lower()]
    matches = [dict(zip(header, row)) for row in chosen]
    assert len(matches) == 1, f"README row {label!r} (key {key!r}) matches {len(matches)} rows of {path}"
    return matches[0]


def cell(path: str, key: str, column: str, **filters: str) -> str:
    """One cell of a source table, found as a README row would find it."""
    return source_row(path, ["method", column], filters, f"`{key}`" if key[0] != "[" else key)[column]


def match(path: str, pattern: str) -> str:
    """The first group of `pattern` in a source file's text."""
    found = re.search(pattern, read(path))
    assert found, f"{path} no longer says {pattern!r}"
    return found.group(1)


# ------------------------------------------------------------------ what README says, and where it comes from


def claims() -> list[str]:
    """The README's sentences with measured numbers in the prose, filled in from the sources."""
    gt = {"reference": "ground truth"}
    psnr, ciede = "PSNR(ab) ↑", "CIEDE2000 ↓"
    return [
        "Measured on all {} pairs".format(match(MODEL_CARD, r"Measured on the (\d+) matched pairs")),
        "The default fast mode colours a 2048x1365 pair in {} s from start to written file on a 2-core CPU (with "
        "`demo-super`), the `--mode highres` run of the network at full resolution in {} s".format(
            match(BENCHMARKS, r"\| fast \| 2048x1365 \| ([\d.]+) s"),
            match(BENCHMARKS, r"\| highres \| 2048x1365 \| ([\d.]+) s")),
        "with the shipped demo checkpoints on the {} pairs of `data/demo/eval_pairs.csv`".format(
            cell(TABLE1, "demo-super", "pairs", reference="top-1")),
        "With the target's own photo as reference, super-attention reaches {} dB PSNR(ab) and CIEDE2000 {} "
        "(standard {} / {}, none {} / {}; transfer {} / {}).".format(
            *(cell(TABLE1, f"demo-{variant}", column, **gt)
              for variant in ("super", "standard", "none", "transfer") for column in (psnr, ciede))),
        "(HIS(pred, ref) {} against HIS_ref {} on these pairs; the paper's HIS_ref is {} on its COCO pairs)".format(
            cell(TABLE1, "demo-super", "HIS(pred, ref)", reference="top-1"),
            cell(TABLE1, "demo-super", "HIS_ref", reference="top-1"),
            match(TABLE1, r"the paper's is ([\d.]+) on its COCO pairs")),
        "(HIS with the reference {}, against the truth's {} and `demo-super`'s {})".format(
            cell(MODEL_CARD, "demo-transfer", "HIS(pred, ref)"), cell(MODEL_CARD, "ground truth", "HIS(pred, ref)"),
            cell(MODEL_CARD, "demo-super", "HIS(pred, ref)")),
        "with {}% of the truths' colourfulness against `demo-super`'s {}%".format(
            match(MODEL_CARD, r"colourfulness [\d.]+ = (\d+)% of the ground truths'"),
            round(100 * float(cell(MODEL_CARD, "demo-super", "colourfulness"))
                  / float(cell(MODEL_CARD, "ground truth", "colourfulness")))),
        "{} against {} dB PSNR(ab) and {} against {} CIEDE2000".format(
            *(match(MODEL_CARD, rf"\| {name} \| {cells} \| [\d.]+ \| [\d.]+ \|")  # the matched pairs' table
              for cells in (r"([\d.]+) \| [\d.]+", r"[\d.]+ \| ([\d.]+)") for name in ("demo-transfer", "demo-super"))),
        "It meets the colourfulness target, {}% of the truths'".format(
            match(MODEL_CARD, r"\(target (\d+)%\): met")),
        "not below `demo-super` on the ranked pairs either (Table 1: {} against {} dB PSNR(ab), {} against {} "
        "CIEDE2000)".format(*(cell(TABLE1, name, column, reference="top-1") for column in (psnr, ciede)
                              for name in ("demo-transfer", "demo-super"))),
    ]


def flat(text: str) -> str:
    return " ".join(text.split())


def checked_tables(readme: str):
    """(header line index, source path, filters, header, rows) of every README table that names its source."""
    lines = readme.splitlines()
    for start, header, rows in tables(readme):
        comment = SOURCE_COMMENT.search(lines[start - 1]) if start else None
        if comment:
            path, *pairs = shlex.split(comment.group(1))
            yield start, path, dict(pair.split("=", 1) for pair in pairs), header, rows


def mismatches(readme: str) -> list[str]:
    """Every number of `readme` that is not the one its source holds, or that has no source."""
    problems, covered = [], set()  # covered: line indices of checked table rows
    for start, path, filters, header, rows in checked_tables(readme):
        covered.update(range(start, start + len(rows) + 2))
        for row in rows:
            source = source_row(path, header, filters, row[0])
            for column, value in zip(header[1:], row[1:]):
                expected = source[source_column(column)]
                if value != expected:
                    problems.append(f"README {row[0]!r} {column}: {value!r}, but {path} says {expected!r}")
    prose = flat(readme)
    claimed = []
    for sentence in claims():
        if flat(sentence) in prose:
            claimed.append(flat(sentence))
        else:
            problems.append(f"README should say (from its sources): {sentence!r}")
    unchecked = strip_code("\n".join("" if i in covered else line for i, line in enumerate(readme.splitlines())))
    unchecked = NOT_MEASURED.sub("", flat(unchecked))
    for sentence in claimed:
        unchecked = unchecked.replace(flat(strip_code(sentence)), " ")
    problems += [f"README number {number!r} has no source (near {unchecked[max(0, m.start() - 40):m.end() + 20]!r})"
                 for m in MEASURED.finditer(unchecked) for number in [m.group()]]
    return problems


# ------------------------------------------------------------------ tests


def test_every_number_in_the_readme_is_the_one_its_source_holds():
    readme = README.read_text()
    assert list(checked_tables(readme)), "README.md names no source for its tables"
    problems = mismatches(readme)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("old, new", [
    ("| 0.904 | 0.106 | 19.47 |", "| 0.904 | 0.106 | 19.48 |"),       # a table cell (Table 1 and 2: both rows)
    ("| 18.95 | 10.76 | 0.505 | 43.6 |", "| 18.95 | 10.76 | 0.505 | 43.7 |"),  # a MODEL_CARD cell
    ("reaches 22.01 dB", "reaches 22.10 dB"),                           # a number in the prose
    ("with 86% of the truths'", "with 87% of the truths'"),         # a percentage in the prose
    ("in 3.4 s from start", "in 3.1 s from start"),                     # a BENCHMARKS.md number
])
def test_a_stale_number_fails(old, new):
    readme = README.read_text()
    assert old in readme
    assert mismatches(readme.replace(old, new))  # the README as committed has none (the first test)


def test_a_new_number_without_a_source_fails():
    readme = README.read_text().replace("## Where to read more", "Colours improve by 12.5% here.\n\n## Where to read more")
    assert any("'12.5%' has no source" in problem for problem in mismatches(readme))


def test_a_table_row_that_is_not_in_its_source_fails():
    readme = README.read_text()
    row = "| ours, transfer (`demo-transfer`) | 0.900 | 0.156 | 19.64 | 10.40 | | | |"
    assert row in readme
    with pytest.raises(AssertionError, match="matches 0 rows"):
        mismatches(readme.replace(row, row.replace("demo-transfer", "demo-official")))
