"""The false-positive cost of the default phone regions: random grouped digit strings with no
context word, and phone precision / recall on the labelled sets, with ``regions: []`` (the
policy's region alone) and with the default list.

    python bench/guardian/bench_regions.py
"""

from __future__ import annotations

import random
from collections import Counter

from pipewarden.batch import Batch
from pipewarden.compliance.evalset import Generator
from pipewarden.compliance.evaluate import gold_spans, outside_set, read_labelled, score
from pipewarden.compliance.guardian import Guardian
from pipewarden.compliance.policy import policy_from_dict
from pipewarden.compliance.recognizers import (
    DEFAULT_REGIONS,
    PHONE,
    Context,
    _valid_national,
    detect,
)


def random_grouped(rng: random.Random) -> str:
    n = rng.randint(7, 12)
    digits = "".join(rng.choice("0123456789") for _ in range(n))
    cuts = sorted(rng.sample(range(1, n), rng.randint(2, 4) - 1))
    sep = rng.choice(" -.")
    return sep.join(digits[i:j] for i, j in zip([0, *cuts], [*cuts, n], strict=True))


def main() -> None:
    rng = random.Random(3)
    values = [random_grouped(rng) for _ in range(20_000)]
    us, default = Context(regions=()), Context()
    hits = {}
    for label, ctx in (("regions: []", us), ("default", default)):
        hits[label] = [
            v for v in values if any(m.entity == PHONE for m in detect(f"id {v} here", ctx))
        ]
        share = len(hits[label]) / len(values)
        print(
            f"{label}: {len(hits[label])} of {len(values)} random grouped digit strings read as phones ({share:.2%})"
        )
    extra = Counter()
    for v in set(hits["default"]) - set(hits["regions: []"]):
        extra.update(r for r in DEFAULT_REGIONS[1:] if _valid_national(v, r, strict=True))
    print("regions that add them:", extra.most_common(8))

    outside = read_labelled(outside_set())
    sets = {
        "project (5,000)": list(Generator(11).records(5000)),
        "outside dev": [r for r in outside if r["group"] == "dev"],
        "outside held-out": [r for r in outside if r["group"] == "heldout"],
    }
    print(
        "\n| set | regions | support | fp | fn | precision | recall | F2 |\n|---|---|---|---|---|---|---|---|"
    )
    for name, recs in sets.items():
        gold = gold_spans(recs)
        for label, doc in (("[]", {"version": 1, "regions": []}), ("default", {"version": 1})):
            insp = Guardian(policy_from_dict(doc)).detect(
                Batch([r["fields"] for r in recs], "<b>"), "b"
            )
            preds = [(f.index, f.column, f.start, f.end, f.entity) for f in insp.findings]
            m = score(preds, gold, [PHONE])[PHONE]
            print(f"| {name} | {label} | {m['support']} | {m['fp']} | {m['fn']} | "
                  f"{m['precision']:.3f} | {m['recall']:.3f} | {m['f2']:.3f} |")  # fmt: skip


if __name__ == "__main__":
    main()
