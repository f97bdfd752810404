"""__PW_NAME__: the block of the Mage pipeline that runs pipewarden's checks.

Written by `pipewarden scaffold mage`. It takes the pipeline config from the upstream block,
passes every batch of the source through pipewarden's schema sentinel, compliance guardian
and anomaly detector, and loads what passes into the warehouse (the rest goes to the
quarantine with its reason). A batch the gate blocks fails the block.
"""

if 'transformer' not in globals():
    from mage_ai.data_preparation.decorators import transformer
if 'test' not in globals():
    from mage_ai.data_preparation.decorators import test


@transformer
def guard_and_load(config_path, *args, **kwargs):
    """Run the pipewarden pipeline whose config the upstream block found."""
    from pipewarden.errors import GateFailed
    from pipewarden.run import run_pipeline

    try:
        report = run_pipeline(config_path)
    except GateFailed as exc:
        raise RuntimeError(f'pipewarden gate failed for __PW_NAME__: {exc}') from exc
    print('pipewarden report:', {k: report.get(k) for k in sorted(report)[:12]})
    return report


@test
def test_output(output, *args) -> None:
    """The run returned a report."""
    assert isinstance(output, dict), 'pipewarden returned no report'
