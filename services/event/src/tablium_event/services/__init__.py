"""Use cases of the event service, one module per capability (the rest still lives in ``service.py``)."""
