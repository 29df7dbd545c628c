"""Corpora: the embedded synthetic corpus generator and real-corpus preparation stages."""
