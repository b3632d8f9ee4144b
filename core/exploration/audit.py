"""Auditing a feature file: the pairs whose label is likely wrong, and the pairs whose sound does
not belong to their picture.

Every score comes from models that did not train on the pair they score (K-fold, out of fold):

- one logistic regression per modality gives the class beliefs of the pair's sound, ``p_a``, and
  of its picture, ``p_v``;
- a linear CCA fitted on the other folds' pairs maps both modalities into one space, where a
  pair's own picture should stand out among the pictures of other clips when searched with its
  sound, and the other way round.

A *mismatched pair* is one whose halves do not find each other: its score is the share of other
clips' halves that sit closer than its own (its cross-modal retrieval rank as a share, both ways
averaged; about 0.5 for a sound and picture that have nothing to do with each other, near 0 for a
true pair). A *label issue* is a pair whose halves belong together and agree with each other but
not with the label: the two modalities' beliefs are combined as independent evidence of one class
(``p(c | a, v)`` proportional to ``p_a(c) p_v(c) / prior(c)``), the score is ``1 - p(given | a,
v)`` and the suggested class is the most likely one. A pair flagged as mismatched is not listed
as a label issue: the class of a broken pair cannot be read from it.

The inputs are standardised and reduced by PCA (at most ``pca_dims`` per modality) on all the
audited pairs first: PCA sees neither the labels nor which halves are paired, so it lets no
answer leak into a fold. Work is linear in the number of pairs: each held-out pair is compared with
at most ``candidates`` other clips of its fold.

Pure functions of arrays (no files, no Qt): ``avexplorer audit`` and the app's Data issues view
call ``audit_pairs`` and read the ``Audit`` back.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from core.data.dataset import UNLABELLED, AVDataset, Split
from core.errors import UserError

# A pair whose halves rank each other below this share of other clips is flagged as mismatched
# (or below twice the median pair's share, when that is higher: ``Audit.mismatch_threshold``): an
# unrelated sound and picture sit near 0.5, a true pair near 0.
MISMATCH_THRESHOLD = 0.25
# A label is flagged when the pair's two halves each name another class, and together make it
# more likely than the label.
LABEL_THRESHOLD = 0.5

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class AuditConfig:
    folds: int = 5
    pca_dims: int = 64  # per modality, before the fold models
    cca_ridge: float = 1e-3  # shrinks CCA's covariances towards isotropic
    cca_dims: int = 24  # the shared space in which halves look for each other
    candidates: int = 1000  # other clips each held-out pair is ranked against
    regularisation: float = 1.0  # inverse strength of the logistic regressions' L2 penalty
    seed: int = 0


@dataclass(frozen=True)
class LabelIssue:
    index: int  # row in the file's train arrays
    given: int
    suggested: int
    score: float

    def as_dict(self) -> dict[str, int | float]:
        return {
            "index": self.index,
            "given": self.given,
            "suggested": self.suggested,
            "score": round(self.score, 4),
        }


@dataclass(frozen=True)
class MismatchedPair:
    index: int  # row in the file's train arrays
    score: float

    def as_dict(self) -> dict[str, int | float]:
        return {"index": self.index, "score": round(self.score, 4)}


@dataclass(frozen=True)
class Audit:
    """Out-of-fold scores of the audited pairs (the labelled train pairs), aligned with ``rows``."""

    rows: np.ndarray  # [M] rows of the file's train arrays that were audited
    given: np.ndarray  # [M] their labels
    suggested: np.ndarray  # [M] the class both halves together make most likely
    label_score: np.ndarray  # [M] 1 - p(given | both halves)
    mismatch_score: np.ndarray  # [M] share of other clips' halves closer than the pair's own
    audio_probs: np.ndarray = field(repr=False)  # [M, C] out-of-fold class beliefs of the sound
    visual_probs: np.ndarray = field(repr=False)  # [M, C] ... and of the picture
    # [M] how far above the other clips the pair's own half scores, in standard deviations: breaks
    # ties between pairs that both rank first
    pair_z: np.ndarray = field(repr=False)

    @property
    def mismatch_threshold(self) -> float:
        """The score from which a pair is flagged as mismatched: ``MISMATCH_THRESHOLD``, or twice
        the typical (median) pair's score where true pairs find each other poorly (halves that
        share only their class), so that weak evidence does not flag half of a clean set."""
        return max(MISMATCH_THRESHOLD, 2 * float(np.median(self.mismatch_score)))

    @property
    def mismatched(self) -> np.ndarray:
        """[M] bool: the pairs flagged as mismatched: halves that rank each other low and name
        different classes (halves that name one class are more likely a true pair with a wrong
        label or weak evidence), or that rank each other very low."""
        disagree = self.audio_probs.argmax(axis=1) != self.visual_probs.argmax(axis=1)
        limit = self.mismatch_threshold
        return (self.mismatch_score >= limit) & (disagree | (self.mismatch_score >= 2 * limit))

    @property
    def mislabelled(self) -> np.ndarray:
        """[M] bool: the pairs flagged as label issues: both halves name the same other class,
        which together they make more likely than the given one (never a mismatched pair)."""
        agree = (self.audio_probs.argmax(axis=1) == self.suggested) & (
            self.visual_probs.argmax(axis=1) == self.suggested
        )
        return (
            (self.label_score >= LABEL_THRESHOLD)
            & (self.suggested != self.given)
            & agree
            & ~self.mismatched
        )

    def label_order(self) -> np.ndarray:
        """Positions of the pairs that could be label issues (not flagged mismatched), most
        suspect first."""
        candidates = np.flatnonzero(~self.mismatched)
        return candidates[np.argsort(-self.label_score[candidates], kind="stable")]

    def mismatch_order(self) -> np.ndarray:
        """Positions of every audited pair, most likely mismatched first."""
        return np.lexsort((self.pair_z, -self.mismatch_score))

    def label_issues(self, top: int | None = None) -> list[LabelIssue]:
        """The flagged label issues, most suspect first; ``top`` keeps that many at most."""
        order = [i for i in self.label_order() if self.mislabelled[i]][:top]
        return [
            LabelIssue(
                int(self.rows[i]),
                int(self.given[i]),
                int(self.suggested[i]),
                float(self.label_score[i]),
            )
            for i in order
        ]

    def mismatched_pairs(self, top: int | None = None) -> list[MismatchedPair]:
        order = [i for i in self.mismatch_order() if self.mismatched[i]][:top]
        return [MismatchedPair(int(self.rows[i]), float(self.mismatch_score[i])) for i in order]

    def as_dict(self, top: int | None = None) -> dict[str, list[dict[str, int | float]]]:
        """The CLI's JSON: ``{"label_issues": [...], "mismatched_pairs": [...]}``."""
        return {
            "label_issues": [x.as_dict() for x in self.label_issues(top)],
            "mismatched_pairs": [x.as_dict() for x in self.mismatched_pairs(top)],
        }


def file_train(data: AVDataset) -> Split:
    """The file's train arrays in file order: ``data.train`` with the pairs that ``load_h5``
    carved out for val put back where they were."""
    if data.train_rows is None:
        return data.train
    n = len(data.train) + len(data.val)
    val_rows = np.setdiff1d(np.arange(n), data.train_rows)
    order = np.argsort(np.concatenate([data.train_rows, val_rows]), kind="stable")

    def join(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.concatenate([a, b])[order]

    paths = None
    if data.train.paths is not None and data.val.paths is not None:
        paths = tuple(np.array(data.train.paths + data.val.paths, dtype=object)[order])
    return Split(
        join(data.train.audio, data.val.audio),
        join(data.train.visual, data.val.visual),
        join(data.train.labels, data.val.labels),
        paths,
    )


def audit_pairs(
    audio: np.ndarray,
    visual: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    config: AuditConfig | None = None,
    progress: Progress | None = None,
) -> Audit:
    """Score every labelled pair of ``audio``/``visual``/``labels`` (one row per pair, label -1 for
    unlabelled pairs, which are left out) for a wrong label and for mismatched halves."""
    config = config or AuditConfig()
    if config.folds < 2:
        raise UserError("the audit needs at least 2 folds")
    rows = np.flatnonzero(labels != UNLABELLED)
    y = labels[rows].astype(np.int64)
    present = np.unique(y)
    if len(present) < 2:
        raise UserError("the audit needs labelled pairs of at least 2 classes")
    if len(rows) < 2 * config.folds:
        raise UserError(
            f"the audit needs at least {2 * config.folds} labelled pairs, found {len(rows)}"
        )
    steps = config.folds + 1
    report = progress or (lambda done, total, what: None)
    report(0, steps, "reducing the features")
    a = _reduce(audio[rows], config.pca_dims)
    v = _reduce(visual[rows], config.pca_dims)
    m = len(rows)
    pa = np.zeros((m, num_classes))
    pv = np.zeros((m, num_classes))
    share = np.zeros((2, m))
    z = np.zeros((2, m))
    rng = np.random.default_rng(config.seed)
    fold = _stratified_folds(y, config.folds, rng)
    for k in range(config.folds):
        report(k + 1, steps, f"fold {k + 1} of {config.folds}")
        held = np.flatnonzero(fold == k)
        seen = np.flatnonzero(fold != k)
        pa[held] = _class_beliefs(a[seen], y[seen], a[held], num_classes, config)
        pv[held] = _class_beliefs(v[seen], y[seen], v[held], num_classes, config)
        project_a, project_v = _cca(a[seen], v[seen], config.cca_dims, config.cca_ridge)
        # The halves' two links: where CCA places them, and what class each believes in
        # (similarity of the square-rooted beliefs: Bhattacharyya's coefficient).
        share[0, held], z[0, held] = _partner_ranks(
            project_a(a[held]), project_v(v[held]), config.candidates, rng
        )
        share[1, held], z[1, held] = _partner_ranks(
            np.sqrt(pa[held]), np.sqrt(pv[held]), config.candidates, rng
        )
    report(steps, steps, "scoring")
    # Each link counts as much as it tells true pairs apart from others (its median z): on data
    # whose halves share only their class, the class link carries the weight; where halves share
    # more (the clip's own content), the CCA link does.
    weight = np.maximum(np.median(z, axis=1), 0.0) + 1e-6
    weight /= weight.sum()
    prior = np.bincount(y, minlength=num_classes) / m
    # Independent evidence of one class from each half; a small floor keeps one overconfident
    # half from vetoing a class outright.
    floor = 1e-3
    joint = (pa + floor) * (pv + floor) / np.maximum(prior, 1.0 / m)
    joint /= joint.sum(axis=1, keepdims=True)
    at = np.arange(m)
    return Audit(
        rows=rows,
        given=y,
        suggested=joint.argmax(axis=1),
        label_score=1.0 - joint[at, y],
        mismatch_score=weight @ share,
        audio_probs=pa,
        visual_probs=pv,
        pair_z=weight @ z,
    )


def audit_dataset(
    data: AVDataset, config: AuditConfig | None = None, progress: Progress | None = None
) -> Audit:
    """``audit_pairs`` on the labelled pairs of the file's train arrays (val carved by the loader
    included, test never)."""
    split = file_train(data)
    return audit_pairs(split.audio, split.visual, split.labels, data.num_classes, config, progress)


def _reduce(x: np.ndarray, dims: int) -> np.ndarray:
    """Standardised, then the top ``dims`` principal components, scaled to unit mean norm."""
    x = x.astype(np.float64)
    x = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-6)
    if x.shape[1] > dims:
        u, s, _ = np.linalg.svd(x, full_matrices=False)
        x = u[:, :dims] * s[:dims]
    return x / max(np.sqrt((x**2).sum(axis=1).mean()), 1e-12)


def _stratified_folds(y: np.ndarray, folds: int, rng: np.random.Generator) -> np.ndarray:
    """[M] fold of each pair: each class dealt round the folds in a random order."""
    fold = np.zeros(len(y), np.int64)
    offset = 0
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        fold[idx] = (np.arange(len(idx)) + offset) % folds
        offset += len(idx)  # small classes start where the last ended, so folds stay even
    return fold


def _class_beliefs(
    x: np.ndarray, y: np.ndarray, query: np.ndarray, num_classes: int, config: AuditConfig
) -> np.ndarray:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    out = np.zeros((len(query), num_classes))
    if len(np.unique(y)) < 2:  # a fold that saw one class only knows that class
        out[:, y[0]] = 1.0
        return out
    model = LogisticRegression(C=config.regularisation, max_iter=300)
    with warnings.catch_warnings():
        # A few more iterations would move the beliefs little; the ranking is what matters.
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x, y)
    out[:, model.classes_] = model.predict_proba(query)
    return out


def _cca(a: np.ndarray, v: np.ndarray, dims: int, ridge: float):
    """Linear CCA in closed form (whiten each side, SVD of the cross-covariance): two maps into a
    shared space whose axes are weighted by their canonical correlation."""
    mean_a, mean_v = a.mean(axis=0), v.mean(axis=0)
    wa, wv = _whitener(a - mean_a, ridge), _whitener(v - mean_v, ridge)
    cross = ((a - mean_a) @ wa).T @ ((v - mean_v) @ wv) / len(a)
    u, rho, vt = np.linalg.svd(cross)
    k = min(dims, len(rho))
    weight = np.sqrt(rho[:k])
    to_a = wa @ u[:, :k] * weight
    to_v = wv @ vt.T[:, :k] * weight
    return (lambda x: (x - mean_a) @ to_a), (lambda x: (x - mean_v) @ to_v)


def _whitener(x: np.ndarray, ridge: float) -> np.ndarray:
    cov = x.T @ x / len(x)
    cov += ridge * np.trace(cov) / len(cov) * np.eye(len(cov))
    vals, vecs = np.linalg.eigh(cov)
    return vecs / np.sqrt(vals)


def _partner_ranks(
    ua: np.ndarray, uv: np.ndarray, candidates: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """For each pair: the share of candidate clips whose half is closer than its own partner
    (sound -> pictures and picture -> sounds, averaged), and how many standard deviations its
    partner's similarity stands above the candidates'."""
    ua = ua / np.maximum(np.linalg.norm(ua, axis=1, keepdims=True), 1e-12)
    uv = uv / np.maximum(np.linalg.norm(uv, axis=1, keepdims=True), 1e-12)
    n = len(ua)
    share = np.zeros(n)
    z = np.zeros(n)
    own = (ua * uv).sum(axis=1)
    for start in range(0, n, 128):
        block = np.arange(start, min(start + 128, n))
        pick = _candidates(block, n, candidates, rng)  # [B, K] other clips, never the pair itself
        for query, other in ((ua, uv), (uv, ua)):
            sims = np.einsum("bd,bkd->bk", query[block], other[pick])
            share[block] += (sims > own[block, None]).mean(axis=1) / 2
            z[block] += (own[block] - sims.mean(axis=1)) / (sims.std(axis=1) + 1e-9) / 2
    return share, z


def _candidates(block: np.ndarray, n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """[B, min(k, n - 1)] indices of other clips for each pair of ``block``."""
    k = min(k, n - 1)
    if k == n - 1:  # every other clip
        everyone = np.arange(n)
        return np.stack([np.delete(everyone, i) for i in block])
    draw = rng.integers(0, n - 1, size=(len(block), k))
    return draw + (draw >= block[:, None])  # skip the pair itself


def file_row_location(data: AVDataset, row: int) -> tuple[str, int]:
    """(split, position) of row ``row`` of the file's train arrays in ``data``: ("train", i), or
    ("val", i) for a row the loader carved out for val."""
    if data.train_rows is None:
        return "train", int(row)
    at = int(np.searchsorted(data.train_rows, row))
    if at < len(data.train_rows) and data.train_rows[at] == row:
        return "train", at
    val_rows = np.setdiff1d(np.arange(len(data.train) + len(data.val)), data.train_rows)
    return "val", int(np.searchsorted(val_rows, row))
