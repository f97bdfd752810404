"""RCA accuracy on the labelled corpus: pipewarden's signatures against a nearest-neighbour
baseline over TF-IDF of the raw log (scikit-learn), both measured in the same run.

    python bench/rca/run_bench.py [--split dev|heldout|both]

The baseline is fitted on the dev part (the labelled logs it can retrieve from) and asked
about the held-out part: its class is the nearest log's, its fixes those of the three nearest
distinct logs. pipewarden classifies each log alone (no memory of the corpus). Metrics: top-1
class accuracy, top-3 fix hit rate (the labelled fix among the first three), CPU seconds per
log; the machine's load is printed beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "src"))


def load() -> list[dict]:
    return [json.loads(x) for x in (HERE / "corpus.jsonl").read_text().splitlines() if x.strip()]


def ours(rows: list[dict]) -> tuple[list[tuple[str, list[str]]], float]:
    from pipewarden.rca import diagnose

    out = []
    t0 = time.process_time()
    for r in rows:
        doc = diagnose(r["log"], exit_code=r.get("exit_code"))
        out.append((doc["verdict"]["class"], [f["id"] for f in doc["fixes"]][:3]))
    return out, time.process_time() - t0


def baseline(train: list[dict], rows: list[dict]) -> tuple[list[tuple[str, list[str]]], float]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics.pairwise import cosine_similarity

    t0 = time.process_time()
    vec = TfidfVectorizer(sublinear_tf=True, token_pattern=r"(?u)\b\w\w+\b")
    X = vec.fit_transform([r["log"] for r in train])
    Q = vec.transform([r["log"] for r in rows])
    sims = cosine_similarity(Q, X)
    out = []
    for i in range(len(rows)):
        order = sims[i].argsort()[::-1]
        fixes: list[str] = []
        for j in order:
            if train[j]["fix"] not in fixes:
                fixes.append(train[j]["fix"])
            if len(fixes) == 3:
                break
        out.append((train[order[0]]["cls"], fixes))
    return out, time.process_time() - t0


def score(rows: list[dict], preds: list[tuple[str, list[str]]]) -> dict:
    n = len(rows)
    top1 = sum(p[0] == r["cls"] for r, p in zip(rows, preds, strict=True))
    fix3 = sum(r["fix"] in p[1] for r, p in zip(rows, preds, strict=True))
    per = defaultdict(lambda: [0, 0])
    misses = []
    for r, p in zip(rows, preds, strict=True):
        per[r["cls"]][1] += 1
        per[r["cls"]][0] += p[0] == r["cls"]
        if p[0] != r["cls"]:
            misses.append({"source": r["source"], "label": r["cls"], "predicted": p[0]})
    return {
        "n": n,
        "top1": round(top1 / n, 3) if n else None,
        "fix_top3": round(fix3 / n, 3) if n else None,
        "per_class": {k: f"{v[0]}/{v[1]}" for k, v in sorted(per.items())},
        "misses": misses,
    }


def commit() -> str:
    try:
        return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True).stdout.strip()  # fmt: skip
    except OSError:
        return "?"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", choices=["dev", "heldout", "both"], default="both")
    args = ap.parse_args()
    rows = load()
    dev = [r for r in rows if r["split"] == "dev"]
    results = {"commit": commit(), "loadavg_before": Path("/proc/loadavg").read_text().split()[:3],
               "corpus": {"entries": len(rows), "dev": len(dev),
                          "heldout": len(rows) - len(dev),
                          "provoked": sum(r["source"].startswith("provoked:") for r in rows),
                          "classes": len({r["cls"] for r in rows})},
               "splits": {}}  # fmt: skip
    for split in ["dev", "heldout"] if args.split == "both" else [args.split]:
        part = [r for r in rows if r["split"] == split]
        ours_p, ours_cpu = ours(part)
        base_p, base_cpu = baseline(dev, part)
        results["splits"][split] = {
            "pipewarden": {**score(part, ours_p), "cpu_seconds": round(ours_cpu, 3),
                           "cpu_ms_per_log": round(1000 * ours_cpu / max(1, len(part)), 2)},
            "tfidf_nn_baseline": {**score(part, base_p), "cpu_seconds": round(base_cpu, 3),
                                  "note": "fitted on dev; on dev it retrieves the log itself"},
        }  # fmt: skip
    results["loadavg_after"] = Path("/proc/loadavg").read_text().split()[:3]
    results["command"] = "python bench/rca/run_bench.py --split " + args.split
    results["classes_by_count"] = dict(Counter(r["cls"] for r in rows).most_common())
    (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    for split, res in results["splits"].items():
        p, b = res["pipewarden"], res["tfidf_nn_baseline"]
        print(
            f"{split}: n={p['n']}  pipewarden top1={p['top1']} fix@3={p['fix_top3']} "
            f"({p['cpu_ms_per_log']} ms/log)  |  tfidf-nn top1={b['top1']} fix@3={b['fix_top3']}"
        )
        for m in p["misses"]:
            print(f"   miss: {m['label']} -> {m['predicted']}  {m['source']}")
    print(
        "load:",
        results["loadavg_before"],
        "->",
        results["loadavg_after"],
        "commit",
        results["commit"],
    )
    os.sys.stdout.flush()


if __name__ == "__main__":
    main()
