"""Inference backends behind one interface (see base.py); each imports its package lazily."""

from .base import Backend, Session, SessionInfo, backend_names, get_backend

__all__ = ["Backend", "Session", "SessionInfo", "backend_names", "get_backend"]
