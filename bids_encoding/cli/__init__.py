"""Command line: ``bids_encoding bids_dir output_dir participant|group`` and ``bids_encoding demo OUT_DIR``."""

from bids_encoding.cli.entry import main
from bids_encoding.cli.parser import build_parser, config_from_args, parse_args
from bids_encoding.cli.run import run

__all__ = ["build_parser", "config_from_args", "main", "parse_args", "run"]
