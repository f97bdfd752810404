"""Batch monitors on real data cut into daily batches: false alarms on healthy days, and which
injected defects are caught.

    .venv/bin/python bench/anomaly/monitors.py [--seeds 10]

Data (shipped by statsmodels, no download): ``fair`` (6,366 answers of the 1974 Redbook survey;
``occupation`` as its documented category names) and ``randhie`` (20,190 person-years of the
RAND Health Insurance Experiment). Per seed: 40 healthy days of ``--rows`` rows (a random
draw of the data set) build the history, then 20 more healthy days are each judged against the
last 30 healthy days (every alarm there is a false alarm), and one day per defect kind.
Every monitor at its default threshold (``MonitorConfig()``). Writes ``results-monitors.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from pipewarden.anomaly.monitors import MonitorConfig, batch_metrics, evaluate

HERE = Path(__file__).resolve().parent
OCCUPATION = {1: "student", 2: "farming, semi-skilled, unskilled", 3: "white collar",
              4: "teacher, nurse, writer, technician, skilled", 5: "managerial, business",
              6: "professional with advanced degree"}  # fmt: skip


def fair() -> tuple[list[dict], str, str, str]:
    import statsmodels.api as sm

    rows = []
    for i, r in enumerate(sm.datasets.fair.load_pandas().data.to_dict("records")):
        r = {k: round(float(v), 6) for k, v in r.items()}
        r["occupation"] = OCCUPATION[int(r["occupation"])]
        rows.append({"id": i, **r})
    return rows, "age", "occupation", "rate_marriage"


def randhie() -> tuple[list[dict], str, str, str]:
    import statsmodels.api as sm

    d = sm.datasets.randhie.load_pandas().data
    rows = [{"id": i, **{k: round(float(v), 6) for k, v in r.items()}}
            for i, r in enumerate(d.to_dict("records"))]  # fmt: skip
    for r in rows:  # the health status flags as the category they are
        g, f, p = r.pop("hlthg"), r.pop("hlthf"), r.pop("hlthp")
        r["health"] = "good" if g else "fair" if f else "poor" if p else "excellent"
    return rows, "lpi", "health", "disea"


def defects(rows, rng, n, num, cat, num2):
    def day(k=n):
        return [dict(rows[i]) for i in rng.choice(len(rows), k, replace=False)]

    values = Counter(r[cat] for r in rows)
    rare = min(values, key=values.get)
    out = {}
    out["row count down to 30%"] = day(int(0.3 * n))
    b = day()
    for r in b[: int(0.4 * n)]:
        r[num] = None
    out["40% nulls"] = b
    b = day()
    for r in b:
        r[num] = None if r[num] is None else r[num] * 1000
    out["x1000 unit change"] = b
    b = day()
    for r in b[: max(3, n // 10)]:
        r[cat] = "new value"
    out["a new category value"] = b
    half = day(n // 2)
    out["every row duplicated"] = half + [dict(r) for r in half]
    b = day()
    for r in b:
        r[num], r[num2] = r[num2], r[num]
    out["two columns swapped"] = b
    b = day()
    pool = [r for r in rows if r[cat] == rare]
    b[:2] = [dict(pool[int(rng.integers(len(pool)))]) for _ in range(2)]
    for r in b:
        if r[cat] == rare:
            r[cat] = rare + " (renamed)"
    out[f"rare category ({values[rare] / len(rows):.1%}) renamed"] = b
    b = day()
    for r in b:
        r.pop(num2)
    out["a column dropped"] = b
    return out


def run(name, loader, seeds, n):
    rows, num, cat, num2 = loader()
    cfg = MonitorConfig()
    false = Counter()
    healthy_days = 0
    caught: dict[str, Counter] = {}
    for seed in range(seeds):
        rng = np.random.default_rng(seed)

        def day(k=n, rng=rng):
            return [dict(rows[i]) for i in rng.choice(len(rows), k, replace=False)]

        history = [batch_metrics(day(), 0) for _ in range(40)]
        for _ in range(20):
            m = batch_metrics(day(), 0)
            got = evaluate(m, history[-cfg.window :], cfg)
            healthy_days += 1
            for mon in {g["monitor"] for g in got if g["status"] in ("alarm", "severe")}:
                false[mon] += 1
            history.append(m)
        for kind, batch in defects(rows, rng, n, num, cat, num2).items():
            got = evaluate(batch_metrics(batch, 0), history[-cfg.window :], cfg)
            hit = sorted({g["monitor"] for g in got if g["status"] in ("alarm", "severe")})
            caught.setdefault(kind, Counter())["any" if hit else "none"] += 1
            for mon in hit:
                caught[kind][mon] += 1
    return {
        "data": name,
        "rows_per_day": n,
        "seeds": seeds,
        "healthy_days": healthy_days,
        "false_alarms": {k: v / healthy_days for k, v in sorted(false.items())},
        "any_false_alarm": sum(false.values()) / healthy_days,
        "defects": {k: {m: c / seeds for m, c in v.items()} for k, v in caught.items()},
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--rows", type=int, default=150)
    args = ap.parse_args(argv)
    out = {
        "command": "python bench/anomaly/monitors.py " + " ".join(argv or sys.argv[1:]),
        "results": [run("fair", fair, args.seeds, args.rows), run("randhie", randhie, args.seeds, args.rows)],
    }  # fmt: skip
    (HERE / "results-monitors.json").write_text(json.dumps(out, indent=1))
    for r in out["results"]:
        print(f"\n{r['data']}: {r['healthy_days']} healthy days of {r['rows_per_day']} rows")
        print(f"any monitor alarming on a healthy day: {r['any_false_alarm']:.2%}; by monitor: "
              + ", ".join(f"{k} {v:.2%}" for k, v in r["false_alarms"].items()))  # fmt: skip
        print("| defect | caught | by |")
        print("|---|---|---|")
        for kind, c in r["defects"].items():
            by = ", ".join(f"{m} {v:.0%}" for m, v in c.items() if m not in ("any", "none"))
            print(f"| {kind} | {c.get('any', 0):.0%} | {by} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
