import pytest

from harness.errors import HarnessError
from harness.registry import Registry


def test_register_get_list():
    reg = Registry("estimator")

    @reg.register("synflow", needs=("gradients",))
    def synflow(x):
        """Synaptic flow.

        More text."""
        return x + 1

    @reg.register()
    def snip(x):
        return x

    assert reg.list() == ["snip", "synflow"] and reg.list("syn*") == ["synflow"]
    entry = reg.get("synflow")
    assert entry.fn(1) == 2 and entry.meta["needs"] == ("gradients",) and entry.doc == "Synaptic flow."
    assert "snip" in reg and len(reg) == 2
    with pytest.raises(HarnessError, match="unknown estimator 'synflw'.*did you mean synflow"):
        reg.get("synflw")
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("snip")(lambda x: x)
