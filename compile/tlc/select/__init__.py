"""``tlc select``: which unlabelled images to label next (active learning), from a trained run."""

from .api import STRATEGIES, Selection, select, write_selection

__all__ = ["STRATEGIES", "Selection", "select", "write_selection"]
