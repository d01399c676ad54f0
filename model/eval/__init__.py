"""Offline evaluation of the default model on a labelled, generated set of
frames (see dataset.py and run.py; ``npm run eval``)."""
