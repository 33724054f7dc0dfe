"""Built-in target files (TOML), shipped inside the installed tlc as package data."""
