"""The human-readable side of a bundle: ``reports/report.html`` (``tlc build`` writes it, ``tlc report``
regenerates it) and the change record between two bundles (``tlc diff``, ``tlc build --previous``)."""
