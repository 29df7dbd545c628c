"""Corpus-agnostic data handling: audio checks and Kaldi data directories."""
