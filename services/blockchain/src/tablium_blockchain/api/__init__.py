"""HTTP controllers of the blockchain service: thin, no queries."""
