#!/usr/bin/python3
"""Sampling follows the distribution: the first character charrnn draws after
a fixed prime, over many consecutive seeds, against the exact next-character
distribution computed independently by PyTorch (torch.nn.LSTM and the decoder
loaded from the same checkpoint), at temperatures 0.5, 1 and 2, with top_k,
top_p and both. A chi-square goodness-of-fit test rejects at p < 1e-6.

The exact distribution is the one model/core/sampler.c documents: the logits
divided by the temperature, softmax; with top_k the k most likely characters
(ties by lower index), renormalised; with top_p the smallest prefix of those
candidates, most likely first, whose tempered probabilities sum to at least
top_p, renormalised. Each top_p is the midpoint between two consecutive
cumulative sums, so float rounding cannot move the cut.

The generation controls too: min_p (after top_p: the candidates whose tempered
probability is at least min_p times the most likely one's; each min_p halfway
between two consecutive ratios), and the penalties (sampler.h), computed here
in float32 from PyTorch's logits over the prime's last penalty_window
characters: l / r if l > 0 else l * r, minus presence, minus frequency x count,
before temperature. For every such setting the draws must be enough to reject
the distribution a plausible mistake gives (the control ignored, the
repetition penalty applied the wrong way round, the count ignored, the window
ignored, min_p cutting one candidate off too many), so a mutation of a control
is caught.

The number of draws must be enough to tell each temperature from its inverse
(the logits multiplied by T instead of divided): the expected counts of the
right distribution reject that alternative at p < 1e-12, or the test itself
fails for lack of power.

usage: test_sampling_distribution.py CHARRNN_TRAIN SAMPLE_FIRST"""
import math
import os
import subprocess
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import check, finish, train  # noqa: E402
from torch_ref import outputs, torch_model  # noqa: E402

TRAIN, SAMPLE_FIRST = sys.argv[1:3]
PRIME = "it was the "  # then: best, worst, age, epoch, season
DRAWS = 30000
P_REJECT = 1e-6


def chi2_sf(x, df):
    """P(X >= x) for X chi-square with df degrees of freedom: the regularized
    upper incomplete gamma function Q(df/2, x/2)."""
    if math.isinf(x):
        return 0.0
    a = torch.tensor(df / 2.0, dtype=torch.float64)
    return float(torch.special.gammaincc(a, torch.tensor(x / 2.0, dtype=torch.float64)))


def next_logits(path, prime):
    """The decoder's logits after the prime (float32, as charrnn computes them)."""
    rnn, dec, vocab = torch_model(path)
    with torch.no_grad():
        return dec(outputs(rnn, vocab, prime)[-1]), vocab


def f32(v):
    return float(torch.tensor(v, dtype=torch.float32))


def penalise(logits, vocab, prime, rp, pres, freq, window, use_count=True):
    """The penalised logits (float32, as the sampler computes them)."""
    lg = logits.clone().float()
    seen = prime[-window:]
    for c in sorted(set(seen)):
        v = vocab.index(c)
        l = lg[v]
        if rp != 1.0:
            l = l / f32(rp) if float(l) > 0 else l * f32(rp)
        n = seen.count(c) if use_count else 1
        lg[v] = l - torch.tensor(pres, dtype=torch.float32) - \
            torch.tensor(freq, dtype=torch.float32) * torch.tensor(float(n))
    return lg


def exact(logits, temperature, top_k, top_p, min_p=0.0):
    """The distribution of the next character (float64, vocabulary order)."""
    V = logits.numel()
    lg = logits.double()
    order = sorted(range(V), key=lambda v: (-float(logits[v]), v))
    cand = order[:top_k] if 0 < top_k < V else order
    w = torch.exp((lg[cand] - lg[cand].max()) / f32(temperature))
    p = w / w.sum()
    if top_p < 1.0:
        cum = torch.cumsum(p, 0)
        keep = next(i + 1 for i in range(len(cand)) if cum[i] >= f32(top_p))
        cand, p = cand[:keep], p[:keep] / p[:keep].sum()
    if min_p > 0.0:
        keep = int((p / p.max() >= f32(min_p)).sum())  # a prefix: p is in decreasing order
        cand, p = cand[:keep], p[:keep] / p[:keep].sum()
    q = torch.zeros(V, dtype=torch.float64)
    q[cand] = p
    return q


def top_p_keeping(logits, temperature, top_k, keep):
    """A top_p that keeps exactly `keep` candidates: the midpoint between the
    cumulative probabilities of the first keep - 1 and the first keep."""
    q = exact(logits, temperature, top_k, 1.0)
    p = sorted(q.tolist(), reverse=True)
    lo, hi = sum(p[:keep - 1]), sum(p[:keep])
    return (lo + hi) / 2, hi - lo


def min_p_keeping(logits, temperature, keep):
    """A min_p that keeps exactly `keep` candidates: halfway between the
    ratios (to the most likely) of the keep-th and the next."""
    p = sorted(exact(logits, temperature, 0, 1.0).tolist(), reverse=True)
    lo, hi = p[keep] / p[0], p[keep - 1] / p[0]
    return (lo + hi) / 2, hi - lo


def chi_square(counts, q):
    """(statistic, degrees of freedom, p-value) of counts against q; cells of
    expected count < 5 are pooled (with the smallest other cell if the pool
    is still < 5). A draw where q is 0 makes the statistic infinite."""
    n = sum(counts)
    if any(c > 0 and q[v] == 0 for v, c in enumerate(counts)):
        return math.inf, 0, 0.0
    cells = sorted(([n * float(q[v]), counts[v]] for v in range(len(counts)) if q[v] > 0),
                   key=lambda c: c[0])
    pool = [0.0, 0]
    while cells and cells[0][0] < 5:
        e, o = cells.pop(0)
        pool[0] += e
        pool[1] += o
    if pool[0] > 0:
        if pool[0] < 5 and cells:
            cells[0][0] += pool[0]
            cells[0][1] += pool[1]
        else:
            cells.append(pool)
    if len(cells) < 2:
        return 0.0, 0, 1.0
    x = sum((o - e) ** 2 / e for e, o in cells)
    df = len(cells) - 1
    return x, df, chi2_sf(x, df)


def draw(path, seed0, temperature, top_k, top_p, controls=None, prime=PRIME, regex=None):
    """controls: (min_p, repetition, presence, frequency, window)."""
    if regex is not None:
        controls = controls or (0.0, 1.0, 0.0, 0.0, 64)
    extra = [repr(x) for x in controls] if controls else []
    out = subprocess.run([SAMPLE_FIRST, path, prime, str(DRAWS), str(seed0), repr(temperature),
                          str(top_k), repr(top_p)] + extra + ([regex] if regex else []),
                         check=True,
                         capture_output=True).stdout
    return [int(c) for c in out.split()]


def show(q, vocab, counts):
    """The most likely characters' probability / observed frequency, and every
    character drawn that the distribution excludes."""
    top = sorted(range(len(q)), key=lambda v: -float(q[v]))[:6]
    out = ", ".join("%r %.4f/%.4f" % (vocab[v], float(q[v]), counts[v] / DRAWS) for v in top)
    bad = [v for v in range(len(q)) if q[v] == 0 and counts[v] > 0]
    if bad:
        out += "; drawn but excluded: " + ", ".join("%r %d times" % (vocab[v], counts[v])
                                                     for v in bad)
    return out


def check_fit(what, counts, q, vocab, dist="PyTorch's distribution"):
    """counts (DRAWS draws) fit q by the chi-square test."""
    x, df, pv = chi_square(counts, q)
    check(sum(counts) == DRAWS and pv >= P_REJECT,
          "%s: %d draws fit %s (chi-square %.1f, %d df, p %.3g; p/observed: %s)"
          % (what, sum(counts), dist, x, df, pv, show(q, vocab, counts)))


def check_rejects(what, q, name, alt):
    """DRAWS draws of q are enough to reject alt (the test has the power to
    see a mutation of the control)."""
    ax, adf, apv = chi_square([DRAWS * float(v) for v in q], alt)
    check(apv < P_REJECT ** 2, "%s: the draws reject %s (p %.3g)" % (what, name, apv))


# the self-check of the p-value: for 2 degrees of freedom it is exp(-x/2)
for x in (0.5, 7.0, 40.0):
    check(abs(chi2_sf(x, 2) - math.exp(-x / 2)) <= 1e-12 * math.exp(-x / 2) + 1e-300,
          "chi-square survival function, 2 degrees of freedom, x = %g" % x)

with tempfile.TemporaryDirectory() as tmp:
    path = train(TRAIN, tmp, "lstm", 24, 400, ["--seed", "1"])
    logits, vocab = next_logits(path, PRIME)
    settings = [(1.0, 0, 1.0), (0.5, 0, 1.0), (2.0, 0, 1.0), (1.0, 3, 1.0), (2.0, 5, 1.0)]
    for t, k, keep in [(1.0, 0, 3), (2.0, 0, 3), (0.5, 0, 2), (2.0, 4, 2)]:
        p, margin = top_p_keeping(logits, t, k, keep)
        check(margin >= 0.02, "T %g top_k %d: the cut keeping %d candidates is clear (top_p %.4f "
                              "is %.4f from either side)" % (t, k, keep, p, margin / 2))
        settings.append((t, k, p))
    for i, (t, k, p) in enumerate(settings):
        what = "T %g top_k %d top_p %.4f" % (t, k, p)
        q = exact(logits, t, k, p)
        counts = draw(path, 1 + i * DRAWS, t, k, p)
        check_fit(what, counts, q, vocab)
        if t != 1.0:  # the power to tell T from 1/T, from the expected counts
            check_rejects(what, q, "the logits multiplied by T instead",
                          exact(logits, 1.0 / t, k, p))

    # min_p, alone and after top_k / top_p: each cut halfway between two ratios
    seed = 1 + len(settings) * DRAWS
    for t, k, top_p, keep in [(1.0, 0, 1.0, 3), (2.0, 0, 1.0, 4), (0.5, 0, 1.0, 2),
                              (1.0, 4, 1.0, 2), (2.0, 0, 0.99, 3)]:
        mp, margin = min_p_keeping(logits, t, keep)
        what = "T %g top_k %d top_p %g min_p %.4f" % (t, k, top_p, mp)
        check(margin >= 0.02, "%s: the cut keeping %d candidates is clear (%.4f from either "
                              "side)" % (what, keep, margin / 2))
        q = exact(logits, t, k, top_p, mp)
        counts = draw(path, seed, t, k, top_p, (mp, 1.0, 0.0, 0.0, 64))
        seed += DRAWS
        check_fit(what, counts, q, vocab)
        for name, alt in [("min_p ignored", exact(logits, t, k, top_p)),
                          ("one candidate fewer", exact(logits, t, k, top_p,
                                                        min_p_keeping(logits, t, keep - 1)[0])
                           if keep > 1 else None)]:
            if alt is not None:
                check_rejects(what, q, name, alt)

    # penalties over a prime whose likely continuations are in the window
    prime2 = "it was the best of times, it was the worst of times, it was the "
    logits2, _ = next_logits(path, prime2)
    for t, rp, pres, freq, window in [(1.0, 1.8, 0.0, 0.0, 64), (1.0, 0.6, 0.0, 0.0, 64),
                                      (1.0, 1.0, 1.2, 0.0, 64), (1.0, 1.0, -0.8, 0.0, 64),
                                      (1.0, 1.0, 0.0, 0.6, 64), (0.7, 1.5, 0.5, 0.4, 64),
                                      (1.0, 1.0, 0.0, 1.0, 12), (2.0, 1.3, 0.3, -0.3, 30)]:
        what = "T %g repetition %g presence %g frequency %g window %d" % (t, rp, pres, freq,
                                                                          window)
        q = exact(penalise(logits2, vocab, prime2, rp, pres, freq, window), t, 0, 1.0)
        counts = draw(path, seed, t, 0, 1.0, (0.0, rp, pres, freq, window), prime=prime2)
        seed += DRAWS
        check_fit(what, counts, q, vocab, "PyTorch's penalised distribution")
        alts = [("no penalty", exact(logits2, t, 0, 1.0))]
        if rp != 1.0:
            alts.append(("the repetition penalty inverted", exact(
                penalise(logits2, vocab, prime2, 1.0 / rp, pres, freq, window), t, 0, 1.0)))
        if freq != 0.0:
            alts.append(("the count ignored", exact(
                penalise(logits2, vocab, prime2, rp, pres, freq, window, use_count=False),
                t, 0, 1.0)))
        if window < len(prime2):
            alts.append(("the window ignored", exact(
                penalise(logits2, vocab, prime2, rp, pres, freq, len(prime2)), t, 0, 1.0)))
        for name, alt in alts:
            check_rejects(what, q, name, alt)

    # regex: the first character must be one of a class; the others are
    # banned and the allowed ones renormalised, before temperature and top_k
    def masked(lg, allowed):
        out = torch.full_like(lg, -math.inf)
        out[allowed] = lg[allowed]
        return out

    def in_class(c):
        return ("\\n" if c == "\n" else "\\t" if c == "\t" else
                "\\" + c if c.isascii() and not c.isalnum() and c != " " else c)

    order = sorted(range(len(vocab)), key=lambda v: -float(logits[v]))
    allowed = order[1:7]  # not the most likely character: the mask must matter
    pattern = "[" + "".join(in_class(vocab[v]) for v in allowed) + "](?:.|\\n)*"
    for t, k, top_p in [(1.0, 0, 1.0), (2.0, 0, 1.0), (0.5, 3, 1.0), (1.0, 0, 0.9)]:
        what = "T %g top_k %d top_p %g regex %r" % (t, k, top_p, pattern)
        q = exact(masked(logits, allowed), t, k, top_p)
        counts = draw(path, seed, t, k, top_p, regex=pattern)
        seed += DRAWS
        check_fit(what, counts, q, vocab, "PyTorch's masked distribution")
        for name, alt in [("no mask", exact(logits, t, k, top_p)),
                          ("the mask after top_k", exact(logits, t, k, top_p) *
                           torch.isin(torch.arange(len(vocab)), torch.tensor(allowed)))]:
            if alt.sum() == 0:
                continue
            alt = alt / alt.sum()
            if not torch.allclose(alt, q):  # else the same distribution: nothing to tell apart
                check_rejects(what, q, name, alt)
finish()
