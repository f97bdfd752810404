"""__PW_NAME__ __PW_ROLE__ block, written by `pipewarden scaffold mage`."""

if '__PW_DECORATOR__' not in globals():
    from mage_ai.data_preparation.decorators import __PW_DECORATOR__
if 'test' not in globals():
    from mage_ai.data_preparation.decorators import test


@__PW_DECORATOR__
def __PW_FUNCTION__(*args, **kwargs):
    """__PW_DOC__"""
__PW_BODY__


@test
def test_output(output, *args) -> None:
    """The block produced something the next block can use."""
    assert output is not None, 'The output is undefined'
__PW_TEST__
