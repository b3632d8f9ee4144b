"""Compiled per-row kernels of core/evaluation/metrics.py (numba, imported only when metrics are
computed).

A similarity becomes an int32 *rank key*: twice an integer that orders (and ties) exactly like
the float32 score, plus 1 when the gallery item is not relevant to the query. Cosine scores are
below 2 in magnitude, so the integer fits in 30 bits and the doubled key in an int32. One value
sort of a row of keys then ranks the gallery and, within a block of tied scores, puts the
relevant items first; a single linear walk over the sorted row finds every relevant item's block
and with it AP (scikit-learn's ties), MAP@R and R-precision.

Every kernel releases the GIL (``nogil``), so core/evaluation/metrics.py runs chunks on a thread
pool, and is cached on disk (``core.numba_cache``) so that it is compiled once per install.
"""

from __future__ import annotations

import numpy as np

from core.numba_cache import import_numba

numba = import_numba()

_MAGNITUDE = 0x7FFFFFFF
_LIMIT = 0x40000000  # float32 magnitude bits of 2.0


@numba.njit(nogil=True, cache=True, inline="always")
def _score_key(bits: np.int32) -> np.int32:
    """An integer that orders like the float32 whose bits are ``bits`` (sign and magnitude);
    -0.0 and +0.0 are one key, one tie as in scikit-learn."""
    magnitude = bits & np.int32(_MAGNITUDE)
    return -magnitude if bits < 0 else magnitude


@numba.njit(nogil=True, cache=True)
def fill_rank_keys(bits, transposed, start, rel_lo, rel_hi, out):
    """``out[i, j]`` = rank key of query ``start + i`` against gallery item j, reading the score
    at ``sims[start + i, j]`` or, when ``transposed``, at ``bits[j, start + i]``; the query's
    relevant items are the columns ``rel_lo[i]:rel_hi[i]``. Returns False when a score is 2 or
    more in magnitude (not a cosine: the key would overflow)."""
    m, n = out.shape
    worst = np.int32(0)
    if transposed:
        # Down the gallery: each step reads a short run of one row and writes one column of the
        # chunk, whose cache lines stay in the L1 cache for the next steps.
        for j in range(n):
            src = bits[j]
            for i in range(m):
                key = _score_key(src[start + i])
                worst = max(worst, abs(key))
                out[i, j] = 2 * key + np.int32(j < rel_lo[i] or j >= rel_hi[i])
    else:
        for i in range(m):
            lo, hi = rel_lo[i], rel_hi[i]
            src = bits[start + i]
            dst = out[i]
            for j in range(n):
                key = _score_key(src[j])
                worst = max(worst, abs(key))
                dst[j] = 2 * key + np.int32(j < lo or j >= hi)
    return worst < _LIMIT


@numba.njit(nogil=True, cache=True)
def relevance_metrics(sorted_keys, n_relevant, ap, map_at_r, r_precision):
    """AP, MAP@R and R-precision of each row of ascending rank keys with ``n_relevant[i]``
    relevant items (rows without any are left as they are)."""
    m, n = sorted_keys.shape
    positions = np.empty(n + 1, dtype=np.int32)
    for i in range(m):
        r = n_relevant[i]
        if r == 0:
            continue
        row = sorted_keys[i]
        # Where the relevant items are, ascending: each item writes its index at the slot of the
        # count of relevant items so far, which moves on only past a relevant item (no branch).
        count = 0
        for idx in range(n):
            positions[count] = idx
            count += 1 - (row[idx] & 1)
        total_ap = 0.0
        total_map = 0.0
        hits = 0
        start = 0
        for t in range(r):
            # The start of the item's block of tied scores. Within a block the relevant items
            # come first, so the block starts here unless the item just below is the previous
            # relevant one with the same score (then both share its start).
            p = positions[t]
            if t == 0 or positions[t - 1] != p - 1 or row[p - 1] >> 1 != row[p] >> 1:
                start = p
            rel_at_or_above = r - (t - (p - start))
            at_or_above = n - start
            total_ap += rel_at_or_above / at_or_above
            # MAP@R orders ties against the query: the j-th relevant item (best first) comes
            # after every irrelevant item scoring at least as high.
            j = r - t
            position = j + at_or_above - rel_at_or_above
            if position <= r:
                total_map += j / position
                hits += 1
        ap[i] = total_ap / r
        map_at_r[i] = total_map / r
        r_precision[i] = hits / r


@numba.njit(nogil=True, cache=True)
def partner_ranks(sorted_keys, partner_keys, out):
    """1 + the number of other items scoring at least the partner's score, per row."""
    m, n = sorted_keys.shape
    for i in range(m):
        # The first key of the partner's score block: 2 * score (relevant) or 2 * score + 1.
        out[i] = n - np.searchsorted(sorted_keys[i], partner_keys[i] & ~np.int32(1))


@numba.njit(nogil=True, cache=True)
def topk_class_counts(keys, sorted_keys, k, classes, gallery_position, out):
    """``out[i, c]``: items of class ``classes[j]`` among row i's k best (unsorted ``keys``),
    a tie at the k-th place taken in ``gallery_position`` order (a permutation of the columns)."""
    m, n = keys.shape
    tied = np.empty(n, dtype=np.int64)
    column_at = np.zeros(n, dtype=np.int64)  # 1 + the column at each gallery position, 0 if none
    for i in range(m):
        threshold = sorted_keys[i, n - k] >> 1
        row = keys[i]
        above = 0
        n_tied = 0
        for j in range(n):
            score = row[j] >> 1
            if score > threshold:
                out[i, classes[j]] += 1
                above += 1
            elif score == threshold:
                tied[n_tied] = j
                n_tied += 1
        need = k - above
        if n_tied == need:
            for t in range(n_tied):
                out[i, classes[tied[t]]] += 1
            continue
        # More tied at the k-th place than places left (rare): the first ``need`` of them in
        # gallery order, found by walking the gallery positions from the start.
        for t in range(n_tied):
            column_at[gallery_position[tied[t]]] = tied[t] + 1
        taken = 0
        position = 0
        while taken < need:
            j = column_at[position] - 1
            if j >= 0:
                out[i, classes[j]] += 1
                taken += 1
            position += 1
        for t in range(n_tied):
            column_at[gallery_position[tied[t]]] = 0
