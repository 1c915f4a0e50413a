"""The datasets level: one analysis across several datasets' results (docs/group.md)."""
