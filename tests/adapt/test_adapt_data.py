"""The byte tokenizer and the corpus shipped inside the package."""

from importlib import resources

import torch

from torch_biren.adapt import data


def test_corpus_ships_in_the_package():
    text = data.corpus_text()
    assert len(text.encode()) > 20_000
    assert resources.files("torch_biren").joinpath("data", "corpus.txt").is_file()
    assert text.isascii() and "river" in text


def test_byte_tokenizer_round_trips():
    for s in ["The river ", "naïve café, 壁砺 166", ""]:
        ids = data.encode(s)
        assert ids.dtype == torch.long and all(0 <= i < data.VOCAB for i in ids.tolist())
        assert data.decode(ids) == s
    assert data.decode([0xFF]) == "\ufffd"


def test_batches_are_consecutive_windows():
    tokens = torch.arange(100)
    ds = data.Batches(tokens, seq=10, stride=5)
    assert len(ds) == 19 and ds[1].tolist() == list(range(5, 15))
    steps = data.training_batches(3, 2, 8, tokens)
    assert [b.shape for b in steps] == [torch.Size([2, 8])] * 3
    assert steps[1][0, 0].item() == 16  # batch after batch through the stream
