import sys

sys.path.insert(0, __import__("os").path.dirname(__file__))
import numpy as np
import realdata
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.metrics import average_precision_score, roc_auc_score
from threadpoolctl import threadpool_limits

from pipewarden.anomaly.robust import RobustScaler, logsumexp

group = sys.argv[1]


def norm(x):
    m, q = np.quantile(x, [0.5, 0.9])
    return (x - m) / max(q - m, 1e-9)


res = {}
with threadpool_limits(1):
    for t in realdata.tasks():
        if t.group != group:
            continue
        for seed in range(3):
            F, y = t.load(seed if t.draws > 1 else 0)
            C = np.clip(RobustScaler.fit(F).z(F), -5, 5)
            f = norm(
                -IsolationForest(n_estimators=100, max_samples=min(256, len(C)), random_state=seed)
                .fit(C)
                .score_samples(C)
            )
            e = norm(-IsolationForest(random_state=seed).fit(F).score_samples(F))
            comps = {"E": e, "A": f}
            for share in (0.8, 0.9, 0.95):
                p = PCA(n_components=share, svd_solver="full").fit(C)
                R = C - p.inverse_transform(p.transform(C))
                r = norm(np.sqrt((R * R).sum(1)))
                for w in (0.25, 0.5, 1.0):
                    comps[f"lse s{share} w{w}"] = logsumexp(np.stack([f, w * r]), 0)
                    comps[f"sum s{share} w{w}"] = f + w * r
            for k, s in comps.items():
                res.setdefault(k, {}).setdefault(t.name, []).append(
                    (roc_auc_score(y, s), average_precision_score(y, s))
                )
out = []
for k, d in res.items():
    a = np.mean([np.mean([v[0] for v in lst]) for lst in d.values()])
    p = np.mean([np.mean([v[1] for v in lst]) for lst in d.values()])
    out.append((a, p, k))
for a, p, k in sorted(out):
    print(f"{k:22s} AUC {a:.4f} AP {p:.4f}")
