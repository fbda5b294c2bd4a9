#!/usr/bin/python3
"""Writes the PyTorch reference fixtures that tests/unit/test_reference.c checks.

Per cell type (lstm, gru, rnn): a 2-layer model (V=20, H=16) in PyTorch's own
nn.LSTM/GRU/RNN with a linear decoder; two consecutive (B=3, T=7) windows with
the hidden state carried (detached) from the first to the second, as truncated
BPTT does; the logits, loss and every parameter gradient of the second window;
then the losses and final parameters of 5 Adam steps (lr 1e-2) with
clip_grad_value_(0.05) over 5 further windows, the state carried throughout.

Run: /usr/bin/python3 tests/reference/gen_fixtures.py tests/reference
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402

V, H, L, B, T = 20, 16, 2, 3, 7
CLIP, LR, STEPS = 0.05, 1e-2, 5


class Net(torch.nn.Module):
    def __init__(self, cell):
        super().__init__()
        rnn_cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell]
        self.cell = cell
        self.rnn = rnn_cls(V, H, L)
        self.decoder = torch.nn.Linear(H, V)

    def forward(self, x, state):
        onehot = torch.nn.functional.one_hot(x, V).float()  # (T, B, V)
        out, state = self.rnn(onehot, state)
        return self.decoder(out), state


def detach(state):
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


def main(outdir):
    for k, cell in enumerate(["lstm", "gru", "rnn"]):
        torch.manual_seed(1234 + k)
        net = Net(cell)
        with torch.no_grad():  # larger weights than the default exercise saturation
            for p in net.parameters():
                p.uniform_(-0.5, 0.5)
        tensors = {name: p.detach().clone() for name, p in net.state_dict().items()}
        xs = torch.randint(0, V, (2 + STEPS, T + 1, B))
        # window 1, carried into window 2
        _, state = net(xs[0, :T], None)
        logits, _ = net(xs[1, :T], detach(state))
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), xs[1, 1:].reshape(-1))
        loss.backward()
        grads = {"grad." + n: p.grad.detach().clone() for n, p in net.named_parameters()}
        # 5 Adam steps with value clipping, state carried from window to window
        net2 = Net(cell)
        net2.load_state_dict({n: t.clone() for n, t in tensors.items()})
        opt = torch.optim.Adam(net2.parameters(), lr=LR)
        state, losses = None, []
        for s in range(STEPS):
            opt.zero_grad()
            lg, state = net2(xs[2 + s, :T], detach(state))
            ls = torch.nn.functional.cross_entropy(lg.reshape(-1, V), xs[2 + s, 1:].reshape(-1))
            ls.backward()
            torch.nn.utils.clip_grad_value_(net2.parameters(), CLIP)
            opt.step()
            losses.append(ls.item())
        final = {"final." + n: p.detach().clone() for n, p in net2.state_dict().items()}
        out = dict(tensors)
        out["fixture.windows"] = xs.float()  # (7, T+1, B) token ids
        out["fixture.logits"] = logits.detach()  # (T, B, V) of window 2
        out["fixture.loss"] = loss.detach().reshape(1)
        out["fixture.adam_losses"] = torch.tensor(losses)
        out.update(grads)
        out.update(final)
        meta = {"cell": cell, "V": V, "H": H, "L": L, "B": B, "T": T, "clip": CLIP, "lr": LR,
                "steps": STEPS, "torch": torch.__version__}
        st.save(os.path.join(outdir, f"fixture_{cell}.safetensors"), out,
                {"fixture": json.dumps(meta)})
        print(cell, "loss", loss.item(), "adam", losses)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__)))
