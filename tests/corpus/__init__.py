"""Bad inputs for tests/test_corpus.py, built in a temporary directory."""
