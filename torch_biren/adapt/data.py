"""Text for the ladder: a byte-level tokenizer (vocabulary 256, nothing to download) and the English
corpus shipped in the package (torch_biren/data/corpus.txt), cut into training batches."""

from importlib import resources

import torch

VOCAB = 256


def encode(text):
    """UTF-8 bytes as token ids (a LongTensor)."""
    return torch.tensor(list(text.encode("utf-8")), dtype=torch.long)


def decode(ids):
    """Token ids back to text (bytes that are not valid UTF-8 become U+FFFD)."""
    if isinstance(ids, torch.Tensor):
        ids = ids.tolist()
    return bytes(int(i) for i in ids).decode("utf-8", errors="replace")


def corpus_text():
    return resources.files("torch_biren").joinpath("data", "corpus.txt").read_text(encoding="utf-8")


def corpus_tokens():
    return encode(corpus_text())


class Batches(torch.utils.data.Dataset):
    """Windows of `seq` tokens of a token stream, item i starting at i * stride (an HF causal LM
    given labels=input_ids shifts them itself). The same index gives the same window everywhere."""

    def __init__(self, tokens, seq, stride=None):
        self.tokens = tokens
        self.seq = seq
        self.stride = stride or seq
        if len(tokens) < seq:
            raise ValueError(f"corpus of {len(tokens)} tokens is shorter than one sequence of {seq}")
        self.n = (len(tokens) - seq) // self.stride + 1

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        start = (i % self.n) * self.stride
        return self.tokens[start:start + self.seq]


def training_batches(steps, batch, seq, tokens=None):
    """`steps` batches of [batch, seq] tokens, walking through the corpus in order (wrapping)."""
    ds = Batches(corpus_tokens() if tokens is None else tokens, seq)
    out = []
    for s in range(steps):
        out.append(torch.stack([ds[s * batch + b] for b in range(batch)]))
    return out
