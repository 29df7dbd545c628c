"""The text readers count fields exactly as str.split() does, on the fast (numpy) and
the slow (non-ASCII) path, and name the file and line of what they refuse."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spectral.scoring.textfiles import (
    InputFormatError,
    _fields_per_line,
    _lines,
    atomic_write_text,
    label_scores,
    read_pair_scores,
    read_spk2utt,
    read_trials,
    read_utt2spk,
)


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet="ab1 \t\n\r\x0b\x0c\x1c\x1f", min_size=1, max_size=80))
def test_numpy_field_count_equals_str_split(text):
    expected = [len(line.split()) for line in _lines(text)]
    np.testing.assert_array_equal(_fields_per_line(text), expected)


def test_non_ascii_ids_take_the_slow_path_with_the_same_result(tmp_path):
    path = tmp_path / "trials"
    path.write_text("id\u00e9 t\u00fc target\nid2 t2 nontarget\n", encoding="utf-8")
    trials = read_trials(path)
    assert trials.enroll == ("id\u00e9", "id2") and trials.is_target.tolist() == [True, False]
    path.write_text("id\u00e9 t\u00fc target\nid2 t2\n", encoding="utf-8")
    with pytest.raises(InputFormatError, match=r"trials:2: invalid line \(must have 3 fields"):
        read_trials(path)


def test_blank_line_and_missing_final_newline(tmp_path):
    path = tmp_path / "trials"
    path.write_text("a b target\n\nc d nontarget\n")
    with pytest.raises(InputFormatError, match=r"trials:2: invalid line"):
        read_trials(path)
    path.write_text("a b target\nc d nontarget")  # no final newline: still two trials
    assert len(read_trials(path)) == 2


def test_label_scores_matches_pairs_in_any_order(tmp_path):
    (tmp_path / "trials").write_text("a x target\na y nontarget\nb x nontarget\n")
    (tmp_path / "scores").write_text("b x 0.1\na x 0.9\n")
    labels = label_scores(read_pair_scores(tmp_path / "scores"), read_trials(tmp_path / "trials"))
    assert labels.tolist() == [False, True]
    with pytest.raises(InputFormatError, match=r"trials:2: trial 'a y' has no score in"):
        label_scores(read_pair_scores(tmp_path / "scores"), read_trials(tmp_path / "trials"),
                     require_all=True)


def test_speaker_maps_refuse_repeats_and_short_lines(tmp_path):
    (tmp_path / "spk2utt").write_text("s1 u1 u2\ns1 u3\n")
    with pytest.raises(InputFormatError, match=r"spk2utt:2: speaker 's1' repeated"):
        read_spk2utt(tmp_path / "spk2utt")
    (tmp_path / "spk2utt").write_text("s1 u1 u2\ns2\n")
    with pytest.raises(InputFormatError, match=r"spk2utt:2: invalid line \(must have at least 2"):
        read_spk2utt(tmp_path / "spk2utt")
    (tmp_path / "utt2spk").write_text("u1 s1\nu1 s2\n")
    with pytest.raises(InputFormatError, match=r"utt2spk:2: utterance 'u1' repeated"):
        read_utt2spk(tmp_path / "utt2spk")


def test_atomic_write_replaces_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "out.txt"
    atomic_write_text(target, "first\n")
    atomic_write_text(target, "second\n")
    assert target.read_text() == "second\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
