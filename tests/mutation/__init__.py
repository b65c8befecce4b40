"""A mutation check of the VJPs: plant each bug of tests.mutation.mutants in a copy of the repo, run the tests a
developer would run for that code and a gradcheck probe, and report which bugs they catch.

Run by hand, not by CI (about 20 minutes on the course's 2-core machine): `python -m tests.mutation`.
tests/README.md has the latest result; tests/test_mutation_list.py (in CI) keeps the list in step with the source.
"""
