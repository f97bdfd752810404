"""__PW_NAME__ sensor block, written by `pipewarden scaffold mage --wait-for`.

Waits for the dependency `__PW_DEPENDENCY__` of __PW_CONFIG_REL__ with a timeout learned
from its past waits (pipewarden's store), escalating by the pipeline's criticality while it
waits. Mage's own sensors poll every 60 s with no timeout; this one returns True when the
dependency arrived and fails the block when it did not in time, so the pipeline stops and
says why.
"""

if 'sensor' not in globals():
    from mage_ai.data_preparation.decorators import sensor


@sensor
def wait_for_dependency(*args, **kwargs) -> bool:
    """True once `__PW_DEPENDENCY__` is there; raises TimeoutError when it is late."""
    from pathlib import Path

    from mage_ai.settings.repo import get_repo_path
    from pipewarden.conduct.wait import wait_for

    config = Path(get_repo_path()) / '__PW_CONFIG_REL__'
    report = wait_for(str(config), '__PW_DEPENDENCY__')
    for result in report['dependencies']:
        print('pipewarden sensor:', result['dependency'], result['status'],
              'after', result.get('waited_seconds'), 's, timeout', result.get('timeout_seconds'), 's')
    if report['exit_code']:
        raise TimeoutError(report['dependencies'][-1].get('reason', 'dependency timed out'))
    return True
