"""Pearson's r as the library computes it (charrnn_pearson): sums over the
sequence in order, for the /inspect test and the inspect figure's check of
the r the daemon reports."""
import math


def pearson(x, y):
    n = len(x)
    sx, sy = math.fsum(x), math.fsum(y)
    sxx, syy = math.fsum(v * v for v in x), math.fsum(v * v for v in y)
    sxy = math.fsum(a * b for a, b in zip(x, y))
    return (n * sxy - sx * sy) / math.sqrt((n * sxx - sx * sx) * (n * syy - sy * sy))
