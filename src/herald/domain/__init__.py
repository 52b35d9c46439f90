"""Pure rules: no I/O, no frameworks."""
