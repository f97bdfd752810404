import sys
import time

sys.path.insert(0, __import__("os").path.dirname(__file__))
import numpy as np
import realdata
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.mixture import GaussianMixture
from threadpoolctl import threadpool_limits

from pipewarden.anomaly.engines import make_engine
from pipewarden.anomaly.robust import RobustScaler, logsumexp


def z(F):
    s = RobustScaler.fit(F)
    return s.z(F)


def norm(x):
    m, q = np.quantile(x, [0.5, 0.9])
    return (x - m) / max(q - m, 1e-9)


def iforest(C, seed, n=100):
    f = IsolationForest(n_estimators=n, max_samples=min(256, len(C)), random_state=seed).fit(C)
    return -f.score_samples(C)


def subspace(C, share=0.3):
    c = np.median(C, 0)
    _, s, vt = np.linalg.svd(C - c, full_matrices=False)
    var = s**2
    k = int(np.searchsorted(np.cumsum(var) / var.sum(), share) + 1)
    P = (C - c) @ vt[:k].T
    return np.sqrt((P * P).sum(1))


def pca_recon(C, share=0.9):
    p = PCA(n_components=share, svd_solver="full").fit(C)
    R = C - p.inverse_transform(p.transform(C))
    return np.sqrt((R * R).sum(1))


def gmm_diag(C, seed):
    best = None
    bb = np.inf
    for k in (1, 2, 3):
        if len(C) < 10 * k:
            break
        g = GaussianMixture(
            k, covariance_type="diag", reg_covar=1e-3, random_state=seed, max_iter=50
        ).fit(C)
        b = g.bic(C)
        if b < bb:
            best, bb = g, b
    return -best.score_samples(C)


def ecod(F):
    from pyod.models.ecod import ECOD

    m = ECOD().fit(F)
    return m.decision_scores_


M = {
    "A IF z5": lambda F, s: iforest(np.clip(z(F), -5, 5), s),
    "A2 IF z": lambda F, s: iforest(z(F), s),
    "B IF z5+sub": lambda F, s: (
        lambda C: logsumexp(np.stack([norm(iforest(C, s)), norm(subspace(C))]), 0)
    )(np.clip(z(F), -5, 5)),
    "C IF z5+gmmd": lambda F, s: (
        lambda C: logsumexp(np.stack([norm(iforest(C, s)), 0.5 * norm(gmm_diag(C, s))]), 0)
    )(np.clip(z(F), -5, 5)),
    "R IF z5+recon": lambda F, s: (
        lambda C: logsumexp(np.stack([norm(iforest(C, s)), 0.5 * norm(pca_recon(C))]), 0)
    )(np.clip(z(F), -5, 5)),
    "D old v3": lambda F, s: (lambda e: (e.fit(z(F)), e.raw_scores(z(F)))[1])(
        make_engine("sklearn", {"seed": s})
    ),
    "E sk IF raw": lambda F, s: -IsolationForest(random_state=s).fit(F).score_samples(F),
    "F ECOD": lambda F, s: ecod(F),
}
group = sys.argv[1] if len(sys.argv) > 1 else "dev"
res = {}
with threadpool_limits(1):
    for t in realdata.tasks():
        if t.group != group:
            continue
        row = {}
        for name, fn in M.items():
            aucs, aps, secs = [], [], []
            for seed in range(2):
                F, y = t.load(seed if t.draws > 1 else 0)
                t0 = time.perf_counter()
                s = fn(F, seed)
                secs.append(time.perf_counter() - t0)
                aucs.append(roc_auc_score(y, s))
                aps.append(average_precision_score(y, s))
            row[name] = (np.mean(aucs), np.mean(aps), np.mean(secs))
        res[t.name] = row
        print(
            t.name,
            " ".join(f"{k.split()[0]}:{v[0]:.3f}/{v[1]:.3f}/{v[2]:.2f}" for k, v in row.items()),
            flush=True,
        )
print()
for name in M:
    a = np.mean([r[name][0] for r in res.values()])
    p = np.mean([r[name][1] for r in res.values()])
    s = np.sum([r[name][2] for r in res.values()])
    print(f"{name:15s} AUC {a:.4f} AP {p:.4f} time {s:.1f}")
