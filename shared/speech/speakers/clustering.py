"""Speaker embeddings -> speaker numbers: spectral clustering as 3D-Speaker (and senko) do it.

Cosine affinities, each row pruned to its strongest few percent, an unnormalised Laplacian;
the number of speakers is the largest eigen-gap within the allowed range (or the number the
caller gave), then k-means on the leading eigenvectors. Tiny clusters are folded into their
nearest big one and clusters whose centres are nearly the same voice are merged.

Only the eigenpairs the speaker count can use are computed (scipy's ``eigh`` with
``subset_by_index``, LAPACK's ``syevr``): numpy's full ``eigh`` of the 3,000-window Laplacian
held some 380 MB at its peak and took 3.1 s; the 21 smallest, in float64, 145 MB and 1.8 s,
with the same speakers.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from shared.speech.engines.base import Float32Array

IntArray = npt.NDArray[np.int64]
PVAL = 0.012  # keep the strongest 1.2 % of each row's affinities (senko's spectral setting)
MIN_PNUM = 6
MIN_WINDOWS = 10  # fewer windows than this cannot support a second speaker
MIN_CLUSTER = 4
# Centres at least this alike are one voice. Chosen on development conversations (seeds
# 100-111 of tests/conversations.py, 16 and 8 kHz, two and three voices), never on the bench's
# own: 0.775-0.8 told the count right in 47 of 48, 0.875 in 35 (telephone audio makes one
# voice's windows less alike, and it was split), 0.75 and below merged real voices. With
# telephone audio's voice prints taken on its band only, 0.75 and 0.79 both give 72 of 72
# (one voice alone added). The AMI excerpts score the same at 0.75, 0.8 and 0.875.
MERGE_COS = 0.79
MAX_WINDOWS = 3000
ROWS_AT_ONCE = 256  # rows of the affinity matrix sorted together: bounds the sort's index array


def cluster(embeddings: Float32Array, low: int, high: int) -> IntArray:
    """One speaker number per embedding, 0..k-1, k within [low, high] where the data allow.

    Past MAX_WINDOWS (about 30 min of speech) an evenly spaced sample is clustered and every
    window joins its nearest centre: the affinity matrix grows with the square of the windows
    (an hour would need gigabytes), and a few thousand windows already show every voice."""
    n = len(embeddings)
    if n < MIN_WINDOWS or high <= 1:
        return np.zeros(n, np.int64)
    x = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-9)
    if n > MAX_WINDOWS:
        sample = x[:: -(-n // MAX_WINDOWS)]
        labels = _spectral(sample, low, high)
        return _dense((x @ _centres(labels, sample, np.unique(labels)).T).argmax(1))
    return _spectral(x, low, high)


def _spectral(x: Float32Array, low: int, high: int) -> IntArray:
    # Imported here: every worker and `stt transcribe` imports the diarizer, few jobs diarize,
    # and scipy.linalg costs 75 ms and 12 MB to import.
    from scipy.linalg import eigh

    n = len(x)
    # float64: in float32 the partial solver puts zero eigenvalues (one per connected part of
    # the graph) 1e-7 off, enough to reorder the gaps the speaker count is read from.
    laplacian = _laplacian(_pruned(x @ x.T)).astype(np.float64)
    top = min(high, n - 1)
    values, vectors = eigh(
        laplacian, subset_by_index=[0, top], overwrite_a=True, check_finite=False
    )
    del laplacian
    k = _speaker_count(values, low, top)
    labels = _kmeans(vectors[:, :k], k)
    labels = _fold_minor(labels, x)
    if low == high:
        return _dense(labels)
    return _dense(_merge_alike(labels, x, low))


def _pruned(affinity: Float32Array) -> Float32Array:
    """Each row's weakest affinities zeroed, then made symmetric, in ``affinity``'s own memory.
    Rows are sorted a block at a time: one sort of the whole matrix held an index array twice
    its size (72 MB at 3,000 windows). Each row is sorted as it would be in the whole."""
    n = len(affinity)
    drop = min(int((1 - PVAL) * n), n - MIN_PNUM)
    if drop > 0:
        for first in range(0, n, ROWS_AT_ONCE):
            rows = affinity[first : first + ROWS_AT_ONCE]
            np.put_along_axis(rows, np.argsort(rows, axis=1)[:, :drop], 0.0, axis=1)
    affinity += affinity.T  # numpy sees the overlap and reads a copy of the transpose
    affinity *= 0.5
    return affinity


def _laplacian(m: Float32Array) -> Float32Array:
    """D - M, in ``m``'s own memory."""
    np.fill_diagonal(m, 0.0)
    degrees = np.abs(m).sum(axis=1)
    m *= -1.0
    m[np.diag_indices_from(m)] = degrees
    return m


def _speaker_count(values: npt.NDArray[np.float64], low: int, high: int) -> int:
    if low >= high:
        return max(1, high)
    gaps = np.diff(values[low - 1 : high + 1])
    return int(np.argmax(gaps)) + low


def _kmeans(points: npt.NDArray[np.float64], k: int, rounds: int = 10) -> IntArray:
    """Lloyd's k-means, seeded with k-means++ from a fixed seed: the same audio, the same turns."""
    if k <= 1:
        return np.zeros(len(points), np.int64)
    rng = np.random.default_rng(0)
    best, best_cost = np.zeros(len(points), np.int64), np.inf
    for _ in range(rounds):
        centres = _seeds(points, k, rng)
        for _step in range(100):
            labels = ((points[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)
            moved = np.array(
                [
                    points[labels == j].mean(0) if (labels == j).any() else centres[j]
                    for j in range(k)
                ]
            )
            if np.allclose(moved, centres):
                break
            centres = moved
        cost = float(((points - centres[labels]) ** 2).sum())
        if cost < best_cost:
            best, best_cost = labels, cost
    return best


def _seeds(
    points: npt.NDArray[np.float64], k: int, rng: np.random.Generator
) -> npt.NDArray[np.float64]:
    centres = [points[rng.integers(len(points))]]
    for _ in range(k - 1):
        d2 = np.min([((points - c) ** 2).sum(1) for c in centres], axis=0)
        total = d2.sum()
        pick = rng.choice(len(points), p=d2 / total) if total > 0 else rng.integers(len(points))
        centres.append(points[pick])
    return np.array(centres)


def _centres(labels: IntArray, x: Float32Array, ids: npt.NDArray[np.int64]) -> Float32Array:
    c = np.stack([x[labels == i].mean(0) for i in ids])
    unit: Float32Array = c / np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-9)
    return unit


def _fold_minor(labels: IntArray, x: Float32Array) -> IntArray:
    ids, sizes = np.unique(labels, return_counts=True)
    major = ids[sizes >= MIN_CLUSTER]
    if len(major) == len(ids):
        return labels
    if not len(major):
        return np.zeros_like(labels)
    nearest = major[(x @ _centres(labels, x, major).T).argmax(1)]
    return np.where(np.isin(labels, major), labels, nearest)


def _merge_alike(labels: IntArray, x: Float32Array, low: int) -> IntArray:
    labels = labels.copy()
    while len(ids := np.unique(labels)) > max(1, low):
        sim = np.triu(_centres(labels, x, ids) @ _centres(labels, x, ids).T, 1)
        i, j = np.unravel_index(np.argmax(sim), sim.shape)
        if sim[i, j] < MERGE_COS:
            break
        labels[labels == ids[j]] = ids[i]
    return labels


def _dense(labels: IntArray) -> IntArray:
    """0..k-1 in order of first appearance: the numbering an eigensolver's choice of signs
    and k-means' of seeds cannot change, only the grouping can."""
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.argsort(np.argsort(first))
    dense: IntArray = rank[inverse].astype(np.int64)
    return dense
