"""load_orders_api: a Mage data loader block over pipewarden's http source.

Copy it into a Mage project's data_loaders/ with pipeline.yaml beside the project (or set
PIPEWARDEN_PIPELINE). One run loads the API's new pages through pipewarden's checks into the
warehouse, at the concurrency the adaptive controller learned for the host; the block returns
the run's report (rows per batch, the controller's figures) for the next block.
"""

import os

if "data_loader" not in globals():
    from mage_ai.data_preparation.decorators import data_loader
if "test" not in globals():
    from mage_ai.data_preparation.decorators import test


@data_loader
def load_orders_api(*args, **kwargs):
    """Run the pipeline whose source is the orders API; fail the block on bad config (exit 2)
    or a blocked batch (exit 1), with pipewarden's own message."""
    from pipewarden.run import run_pipeline

    here = os.path.dirname(os.path.abspath(__file__))
    config = kwargs.get("pipeline") or os.environ.get(
        "PIPEWARDEN_PIPELINE", os.path.join(here, "pipeline.yaml")
    )
    report = run_pipeline(config, fmt="json")
    if report["exit_code"] != 0:
        failed = [b for b in report["batches"] if b["status"] not in ("loaded", "skipped")]
        raise RuntimeError(f"pipewarden run exit {report['exit_code']}: {failed[-1:]}")
    return report


@test
def test_output(output, *args) -> None:
    """Every row read was loaded or quarantined."""
    t = output["totals"]
    assert t["rows_read"] == t["rows_loaded"] + t["rows_quarantined"]
