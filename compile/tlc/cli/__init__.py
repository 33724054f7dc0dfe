"""The ``tlc`` command line: thin adapters that parse, call one API function, and print."""
