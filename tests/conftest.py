"""Test settings: property tests draw the same examples every run unless asked to explore."""
from hypothesis import settings

# the default: a fixed sequence of examples per test, so a run that passes once passes again
settings.register_profile("default", derandomize=True)
# `pytest --hypothesis-profile=explore`: fresh random examples on every run, to look for new failures
settings.register_profile("explore", derandomize=False)
settings.load_profile("default")
