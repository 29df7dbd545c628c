"""Stage corpus (embedded default): a synthetic, VoxCeleb1-shaped speaker corpus.

A deterministic source-filter voice model (:mod:`.voice`, :mod:`.phones`, :mod:`.synth`)
speaks phone sequences; sessions add room reverberation, noise and a recording channel
(:mod:`.room`, :mod:`.noise`, :mod:`.channel`); :mod:`.plan`, :mod:`.trials` and
:mod:`.generate` lay the result out as VoxCeleb1 (``wav/``, ``vox1_meta.csv``, trial lists)
plus a separate pre-training corpus; :mod:`.cli` is the ``spectral-make-corpus`` entry point.
Everything is generated offline from one seed and is free of any licence but the project's.
"""
