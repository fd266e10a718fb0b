"""Pure player rules: no I/O."""
