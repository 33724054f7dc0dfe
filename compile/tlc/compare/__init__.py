"""``tlc compare``: candidate models (small CNN, scratch, transfer from tlc runs) trained on the same
splits with the same recipe, built for one target, and reported side by side."""

from .api import CompareResult, compare
from .candidates import Candidate, parse_candidates
from .write import write_outputs

__all__ = ["Candidate", "CompareResult", "compare", "parse_candidates", "write_outputs"]
