"""Jinja2 rendering of the reports, and the one way a number reaches a page: with the file (and row, column or
key) it comes from, so that tests can check every number against its table or sidecar."""

import json
import math
from pathlib import Path

from markupsafe import Markup, escape

TEMPLATES = Path(__file__).parent / "templates"


def number(value, digits=3):
    """A number as the reports show it: ``digits`` decimals for fractions, integers as integers, n/a."""
    value = value.item() if hasattr(value, "item") else value  # numpy scalars as Python numbers
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) >= 1):
        return f"{int(value):d}"
    shown = f"{value:.{digits}f}"
    return shown[1:] if shown.startswith("-") and float(shown) == 0 else shown  # no "-0.000"


def shown_as(value, digits=3, kind=None):
    """The text of a number in a report cell."""
    from bids_encoding.reports.style import parameters

    if kind == "parameters":
        value = value.item() if hasattr(value, "item") else value
        return parameters(value) if value else "n/a"
    return number(value, digits)


def cell(value, file, column=None, row=None, key=None, digits=3, kind=None):
    """A ``<td>`` holding a number and where it comes from: a TSV's ``column`` in the ``row`` selected by
    ``{column: value}``, or a JSON sidecar's ``key`` (a ``/`` path). ``kind="parameters"`` shows a parameter
    count in words (``22.7M``)."""
    attributes = {"data-file": str(file)}
    if kind is not None:
        attributes["data-kind"] = kind
    if column is not None:
        attributes["data-column"] = column
        attributes["data-row"] = json.dumps(row or {}, sort_keys=True)
    if key is not None:
        attributes["data-key"] = key
    shown = shown_as(value, digits, kind)
    attrs = " ".join(f'{name}="{escape(value)}"' for name, value in attributes.items())
    return Markup(f'<td class="num" {attrs}>{escape(shown)}</td>')


def inline_svg(path):
    """An SVG file's ``<svg>`` element, to put in a page (its XML prolog left out), or None when absent."""
    path = Path(path)
    if not path.is_file():
        return None
    text = path.read_text()
    return Markup(text[text.index("<svg"):])


def relative(path, output_dir):
    """A path inside the output folder, as the pages name their source files."""
    return Path(path).relative_to(output_dir).as_posix()


def render(template, path, **context):
    """Render ``template`` to ``path`` (a self-contained HTML file)."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    environment = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["j2"]),
                              trim_blocks=True, lstrip_blocks=True)
    from bids_encoding.reports.style import label

    environment.globals.update(cell=cell, number=number, Markup=Markup, label=label)
    text = environment.get_template(template).render(**context)
    Path(path).write_text(text, encoding="utf-8")
    return Path(path)
