"""Use cases of the blockchain service: the chain connection and token, deposit addresses, the watcher."""
