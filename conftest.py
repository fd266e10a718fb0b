"""Hypothesis profiles for the whole suite.

``ci`` (the default): property tests draw the same examples on every run, so a run fails only when
the code changed, never by a new draw; the examples are still many and random-looking.
``explore`` (``HYPOTHESIS_PROFILE=explore``): fresh random examples and more of them, to look for new
failures; a failing example is printed with its reproduce blob, and belongs in a scenario test.
"""

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Service processes the tests start keep small connection pools (4, as many again in a burst; 2 for reads): two xdist
# workers each running a test with several services (two lobbies, a wallet, a player...) stay well inside
# a default Postgres's 100 connections. A test that wants another size sets the variable itself.
os.environ.setdefault("TABLIUM_DB_POOL_SIZE", "4")
os.environ.setdefault("TABLIUM_DB_READ_POOL_SIZE", "2")  # the hot-read pool, opened at start
