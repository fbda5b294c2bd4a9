"""A charrnn checkpoint as PyTorch modules: torch.nn.LSTM / GRU / RNN and the
decoder torch.nn.Linear, loaded with strict load_state_dict (the reference
the interop tests compare against). bf16 files load as they are; int8 files
are dequantized as the README says (q * scale per row)."""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
import st  # noqa: E402


def dequantize(tensors):
    """int8 files: W[r][c] = q[r][c] * scale[r] (NAME.scale, F32), as floats."""
    out = {}
    for k, v in tensors.items():
        if k.endswith(".scale"):
            continue
        if v.dtype == torch.int8:
            v = v.float() * tensors[k + ".scale"].unsqueeze(1)
        out[k] = v
    return out


def torch_model(path):
    tensors, meta = st.load(path)
    if meta.get("dtype") == "int8":
        tensors = dequantize(tensors)
    cell, L, H = meta["cell"], int(meta["num_layers"]), int(meta["hidden_size"])
    vocab = json.loads(meta["vocab"])
    V = len(vocab)
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell]
    rnn, dec = cls(V, H, L), torch.nn.Linear(H, V)
    rnn.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("rnn.")}, strict=True)
    dec.load_state_dict({k[8:]: v for k, v in tensors.items() if k.startswith("decoder.")},
                        strict=True)
    return rnn, dec, vocab
