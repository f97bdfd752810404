"""Benchmark: pipewarden's guardian (precision and recall modes) against Presidio's
AnalyzerEngine (regex-only, no_op NLP), on two labelled sets, in the same run.

* the project's set: records from ``pipewarden.compliance.evalset.Generator`` (Faker + the
  project's own formats and hard negatives; 5 text fields per record);
* the outside-built set (``src/pipewarden/compliance/data/outside_set.jsonl``, built by
  ``bench/guardian/build_outside_set.py``): presidio-evaluator's sentence templates and
  columns of Faker's own providers, in a dev and a held-out group of locales.

Reports per entity precision / recall / F2 for each tool, phone recall on the numbers valid in
a configured region (extensions included), and records per CPU-second on the project's set.
Presidio is slow, so on the project's set it runs on the first ``--presidio-records`` records;
both tools are scored on exactly those records.

    pip install -e '.[bench]'
    python bench/guardian/bench_guardian.py --records 100000 --presidio-records 5000
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import phonenumbers

from pipewarden.batch import Batch
from pipewarden.compliance.evalset import Generator
from pipewarden.compliance.evaluate import gold_spans, outside_set, read_labelled, score
from pipewarden.compliance.guardian import Guardian
from pipewarden.compliance.recognizers import BUILTIN_ENTITIES, DEFAULT_REGIONS, PHONE

TOOLS = ["pipewarden precision", "pipewarden recall", "presidio"]


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


def run_presidio(engine, records, entities):
    preds = []
    t0 = time.process_time()
    for i, rec in enumerate(records):
        for field, text in rec["fields"].items():
            if not text:
                continue
            for r in engine.analyze(text, language="en", entities=entities):
                preds.append((i, field, r.start, r.end, r.entity_type))
    return preds, time.process_time() - t0


def run_pipewarden(records, mode: str):
    guardian = Guardian(mode=mode)
    batch = Batch([rec["fields"] for rec in records], source="<bench>")
    t0 = time.process_time()
    insp = guardian.detect(batch, "bench")
    elapsed = time.process_time() - t0
    return [(f.index, f.column, f.start, f.end, f.entity) for f in insp.findings], elapsed


_EXT = re.compile(r"\s*(?:[xX]|[eE]xt?n?\.?|[eE]xtension|#)[ .:]?\d{1,6}\s*$")


def valid_in_configured_region(value: str, regions=DEFAULT_REGIONS) -> bool:
    """A phone label that phonenumbers itself calls valid, as written (extension dropped), in
    one of the configured regions or with its +country code: the target's denominator."""
    number = _EXT.sub("", value)
    for region in regions:
        try:
            if phonenumbers.is_valid_number(phonenumbers.parse(number, region)):
                return True
        except phonenumbers.NumberParseException:
            continue
    return False


def phone_recall_valid(records, preds) -> dict:
    gold = [g for g in gold_spans(records) if g[4] == PHONE]
    valid = [
        g for g in gold if valid_in_configured_region(records[g[0]]["fields"][g[1]][g[2] : g[3]])
    ]
    found = {}
    for r, f, s, e, ent in preds:
        if ent == PHONE:
            found.setdefault((r, f), []).append((s, e))
    hit = sum(any(a < e and s < b for a, b in found.get((r, f), ())) for r, f, s, e, _ in valid)
    return {
        "support": len(valid),
        "of_all": len(gold),
        "recall": round(hit / len(valid), 4) if valid else 0.0,
    }


def table(rows: dict[str, dict], tools: list[str]) -> str:
    head = "| entity | " + " | ".join(f"{t} P / R / F2" for t in tools) + " |"
    lines = [head, "|---" * (len(tools) + 1) + "|"]
    for entity in BUILTIN_ENTITIES:
        if not any(rows[t].get(entity, {}).get("support") for t in tools):
            continue
        cells = []
        for t in tools:
            m = rows[t].get(entity)
            cells.append(f"{m['precision']:.3f} / {m['recall']:.3f} / {m['f2']:.3f}" if m else "-")
        lines.append(f"| {entity} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def evaluate_set(name, records, engine, entities, out):
    gold = gold_spans(records)
    preds, cpu, acc, phones = {}, {}, {}, {}
    for mode in ("precision", "recall"):
        p, c = run_pipewarden(records, mode)
        preds[f"pipewarden {mode}"], cpu[f"pipewarden {mode}"] = p, c
    p, c = run_presidio(engine, records, entities)
    preds["presidio"], cpu["presidio"] = p, c
    for t in TOOLS:
        acc[t] = score(preds[t], gold, entities)
        phones[t] = phone_recall_valid(records, preds[t])
    out[name] = {"records": len(records), "cpu_s": cpu, "accuracy": acc, "phone_valid": phones}
    print(f"\n### {name}: {len(records)} records\n")
    print(table(acc, TOOLS))
    print("\nphone recall on numbers valid in a configured region: " + ", ".join(
        f"{t} {phones[t]['recall']:.3f}" for t in TOOLS
    ) + f" ({phones[TOOLS[0]]['support']} of {phones[TOOLS[0]]['of_all']} phone labels)")  # fmt: skip
    below = {
        t: [e for e in entities if acc[t].get(e, {}).get("support") and
            acc[t][e]["f2"] < acc["presidio"].get(e, {}).get("f2", 0)]
        for t in TOOLS[:2]
    }  # fmt: skip
    print(f"entities where pipewarden's F2 is below Presidio's: {below}")
    return preds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--presidio-records", type=int, default=5_000)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--out", default="bench/out/guardian.json")
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()  # fmt: skip
    print(f"commit {commit}, load average {os.getloadavg()}", flush=True)

    entities = list(BUILTIN_ENTITIES)
    engine = presidio_engine()
    engine.analyze("warm up john@example.com 212-555-0199", language="en", entities=entities)
    result: dict = {
        "commit": commit,
        "machine": f"{platform.processor() or platform.machine()}, Python {sys.version.split()[0]}",
        "load_before": os.getloadavg(),
    }

    # speed: the project's set, pipewarden on every record, Presidio on the first ones
    t0 = time.time()
    records = list(Generator(args.seed).records(args.records))
    print(f"generated {len(records)} records x 5 fields in {time.time() - t0:.1f}s", flush=True)
    speed = {}
    for mode in ("precision", "recall"):  # warm up: phonenumbers loads region metadata lazily
        run_pipewarden(records[:500], mode)
    for mode in ("precision", "recall"):
        _, cpu = run_pipewarden(records, mode)
        speed[f"pipewarden {mode}"] = {"records": len(records), "cpu_s": round(cpu, 2),
                                       "records_per_cpu_s": round(len(records) / cpu)}  # fmt: skip
    sub = records[: args.presidio_records]
    _, cpu = run_presidio(engine, sub, entities)
    speed["presidio"] = {"records": len(sub), "cpu_s": round(cpu, 2),
                         "records_per_cpu_s": round(len(sub) / cpu, 1)}  # fmt: skip
    for t in TOOLS[:2]:
        speed[t]["speedup"] = round(
            speed[t]["records_per_cpu_s"] / speed["presidio"]["records_per_cpu_s"], 1
        )
    result["speed"] = speed
    print("\n" + "\n".join(f"{t}: {v}" for t, v in speed.items()), flush=True)

    sets: dict = {}
    evaluate_set(f"project set (first {len(sub)} records)", sub, engine, entities, sets)
    outside = read_labelled(outside_set())
    for group in ("dev", "heldout"):
        evaluate_set(f"outside set, {group} locales",
                     [r for r in outside if r.get("group") == group], engine, entities, sets)  # fmt: skip
    result["sets"] = sets
    result["load_after"] = os.getloadavg()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2, sort_keys=True))
    print(f"\nload average after: {result['load_after']}; results in {args.out}")


if __name__ == "__main__":
    main()
