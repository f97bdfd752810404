"""Benchmark: pipewarden's guardian against Presidio's AnalyzerEngine (regex-only, no_op NLP).

Same generated records (Faker, fixed seed; PII mixed with hard negatives, 5 text fields per
record), same machine, same run. Reports records per CPU-second and precision / recall / F2 per
entity for both. Presidio is slow, so it runs on the first ``--presidio-records`` records; F2 of
both tools is compared on exactly those records (pipewarden's full-run F2 is reported too).

    pip install -e '.[bench]'
    python bench/guardian/bench_guardian.py --records 100000 --presidio-records 2000
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import time
from pathlib import Path

from pipewarden.batch import Batch
from pipewarden.compliance.evalset import Generator
from pipewarden.compliance.evaluate import gold_spans, score
from pipewarden.compliance.guardian import Guardian
from pipewarden.compliance.recognizers import BUILTIN_ENTITIES


def presidio_engine():
    """AnalyzerEngine with the no_op NLP engine: pattern recognizers only, no spaCy model."""
    import tldextract
    import tldextract.tldextract as tx

    # offline: use tldextract's bundled public suffix list instead of fetching it
    tx.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    nlp = NlpEngineProvider(
        nlp_configuration={
            "nlp_engine_name": "no_op",
            "models": [{"lang_code": "en", "model_name": "no_op"}],
        }
    ).create_engine()
    registry = RecognizerRegistry(supported_languages=["en"])
    registry.load_predefined_recognizers(nlp_engine=nlp, languages=["en"])
    return AnalyzerEngine(nlp_engine=nlp, registry=registry, supported_languages=["en"])


def run_presidio(records, entities):
    engine = presidio_engine()
    engine.analyze("warm up john@example.com 212-555-0199", language="en", entities=entities)
    preds = []
    t0 = time.process_time()
    for i, rec in enumerate(records):
        for field, text in rec["fields"].items():
            if not text:
                continue
            for r in engine.analyze(text, language="en", entities=entities):
                preds.append((i, field, r.start, r.end, r.entity_type))
    return preds, time.process_time() - t0


def run_pipewarden(records):
    guardian = Guardian()
    batch = Batch([rec["fields"] for rec in records], source="<bench>")
    t0 = time.process_time()
    insp = guardian.detect(batch, "bench")
    elapsed = time.process_time() - t0
    return [(f.index, f.column, f.start, f.end, f.entity) for f in insp.findings], elapsed


def table(rows: dict[str, dict], tools: list[str]) -> str:
    head = "| entity | " + " | ".join(f"{t} P / R / F2" for t in tools) + " |"
    lines = [head, "|---" * (len(tools) + 1) + "|"]
    for entity in BUILTIN_ENTITIES:
        cells = []
        for t in tools:
            m = rows[t].get(entity)
            cells.append(f"{m['precision']:.3f} / {m['recall']:.3f} / {m['f2']:.3f}" if m else "-")
        lines.append(f"| {entity} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--presidio-records", type=int, default=2_000)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--out", default="bench/out/guardian.json")
    args = ap.parse_args()
    logging.disable(logging.WARNING)

    t0 = time.time()
    records = list(Generator(args.seed).records(args.records))
    print(f"generated {len(records)} records x 5 fields in {time.time() - t0:.1f}s", flush=True)
    gold = gold_spans(records)
    entities = list(BUILTIN_ENTITIES)

    pw_preds, pw_cpu = run_pipewarden(records)
    pw_rate = len(records) / pw_cpu
    print(f"pipewarden: {pw_cpu:.2f} CPU-s, {pw_rate:,.0f} records/CPU-s", flush=True)

    sub = records[: args.presidio_records]
    pr_preds, pr_cpu = run_presidio(sub, entities)
    pr_rate = len(sub) / pr_cpu
    print(f"presidio:   {pr_cpu:.2f} CPU-s on {len(sub)} records, {pr_rate:,.0f} records/CPU-s")

    n = len(sub)
    sub_gold = [g for g in gold if g[0] < n]
    acc = {
        "pipewarden": score([p for p in pw_preds if p[0] < n], sub_gold, entities),
        "presidio": score(pr_preds, sub_gold, entities),
    }
    full = score(pw_preds, gold, entities)
    result = {
        "machine": f"{platform.processor() or platform.machine()}, Python {sys.version.split()[0]}",
        "records": len(records),
        "presidio_records": n,
        "pipewarden_records_per_cpu_s": round(pw_rate),
        "presidio_records_per_cpu_s": round(pr_rate, 1),
        "speedup": round(pw_rate / pr_rate, 1),
        "accuracy_same_records": acc,
        "pipewarden_accuracy_all_records": full,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2, sort_keys=True))
    print(f"\nspeed-up: {result['speedup']}x")
    print(f"\nF2 on the same {n} records:\n")
    print(table(acc, ["pipewarden", "presidio"]))
    print(f"\npipewarden on all {len(records)} records:\n")
    print(table({"pipewarden": full}, ["pipewarden"]))
    worse = [
        e
        for e in entities
        if acc["pipewarden"].get(e, {}).get("f2", 0) < acc["presidio"].get(e, {}).get("f2", 0)
    ]
    print(f"\nentities where pipewarden's F2 is below Presidio's: {worse or 'none'}")


if __name__ == "__main__":
    main()
