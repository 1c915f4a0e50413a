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
    return f"{value:.{digits}f}"


def cell(value, file, column=None, row=None, key=None, digits=3):
    """A ``<td>`` holding a number and where it comes from: a TSV's ``column`` in the ``row`` selected by
    ``{column: value}``, or a JSON sidecar's ``key`` (a ``/`` path)."""
    attributes = {"data-file": str(file)}
    if column is not None:
        attributes["data-column"] = column
        attributes["data-row"] = json.dumps(row or {}, sort_keys=True)
    if key is not None:
        attributes["data-key"] = key
    shown = number(value, digits)
    attrs = " ".join(f'{name}="{escape(value)}"' for name, value in attributes.items())
    return Markup(f'<td class="num" {attrs}>{escape(shown)}</td>')


def render(template, path, **context):
    """Render ``template`` to ``path`` (a self-contained HTML file)."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    environment = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["j2"]),
                              trim_blocks=True, lstrip_blocks=True)
    environment.globals.update(cell=cell, number=number, Markup=Markup)
    text = environment.get_template(template).render(**context)
    Path(path).write_text(text, encoding="utf-8")
    return Path(path)
