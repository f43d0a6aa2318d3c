"""display_parameters reproduces TextBrewer 0.2.1's utils.display_parameters table."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from textbrewer_worker.display import display_parameters, parameter_tree


class Net(nn.Module):
    """256,000 + 131,584 + 5,130 parameters and a 5-element buffer: 392,719 state-dict elements."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(1000, 256)
        self.body = nn.Sequential(nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 10))
        # A module's own buffers come before its children in state_dict(), so "scale" is listed first.
        self.register_buffer("scale", torch.ones(5))


class Tied(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = nn.Linear(4, 4)
        self.b.weight = self.a.weight


HEADER_15 = "LAYER NAME     \t        #PARAMS\t     RATIO\t MEM(MB)\n"

NET_FULL = (
    "\n"
    + HEADER_15
    + "--model:       \t        392,719\t   100.00%\t    1.50\n"
    + "  --scale:     \t              5\t     0.00%\t    0.00\n"
    + "  --emb        \n"
    + "    --weight:  \t        256,000\t    65.19%\t    0.98\n"
    + "  --body:      \t        136,714\t    34.81%\t    0.52\n"
    + "    --0:       \t        131,584\t    33.51%\t    0.50\n"
    + "      --weight:\t        131,072\t    33.38%\t    0.50\n"
    + "      --bias:  \t            512\t     0.13%\t    0.00\n"
    + "    --2:       \t          5,130\t     1.31%\t    0.02\n"
    + "      --weight:\t          5,120\t     1.30%\t    0.02\n"
    + "      --bias:  \t             10\t     0.00%\t    0.00\n"
)

NET_LEVEL_1 = (
    "\n"
    "LAYER NAME\t        #PARAMS\t     RATIO\t MEM(MB)\n"
    "--model:  \t        392,719\t   100.00%\t    1.50\n"
    "  --scale:\t              5\t     0.00%\t    0.00\n"
    "  --emb:  \t        256,000\t    65.19%\t    0.98\n"
    "  --body: \t        136,714\t    34.81%\t    0.52\n"
)

NET_LEVEL_0 = "\nLAYER NAME\t        #PARAMS\t     RATIO\t MEM(MB)\n--model:\t        392,719\t   100.00%\t    1.50\n"

TIED_FULL = (
    "\n"
    "LAYER NAME           \t        #PARAMS\t     RATIO\t MEM(MB)\n"
    "--model:             \t             24\t   100.00%\t    0.00\n"
    "  --a:               \t             20\t    83.33%\t    0.00\n"
    "    --weight:        \t             16\t    66.67%\t    0.00\n"
    "    --bias:          \t              4\t    16.67%\t    0.00\n"
    "  --b:               \t              4\t    16.67%\t    0.00\n"
    "    --weight(shared):\t              0\t     0.00%\t    0.00\n"
    "    --bias:          \t              4\t    16.67%\t    0.00\n"
)


def test_full_table_matches_hand_computed_layout() -> None:
    assert display_parameters(Net()) == NET_FULL


def test_state_dict_input_gives_the_same_table() -> None:
    net = Net()
    assert display_parameters(net.state_dict()) == NET_FULL
    assert display_parameters(dict(net.state_dict())) == NET_FULL


def test_max_level_shows_totals_and_hides_children() -> None:
    net = Net()
    assert display_parameters(net, max_level=1) == NET_LEVEL_1
    assert display_parameters(net, max_level=0) == NET_LEVEL_0
    # A max_level deeper than the tree is the full table.
    assert display_parameters(net, max_level=10) == NET_FULL


def test_shared_tensor_counts_zero_and_is_tagged() -> None:
    assert display_parameters(Tied()) == TIED_FULL


def test_half_precision_memory_uses_element_size() -> None:
    table = display_parameters({"w": torch.zeros(1024, 512, dtype=torch.float16)})
    # Name width 7 + 1; a single child collapses the root to its name; 524,288 fp16 elements are 1 MB.
    assert table == (
        "\n"
        "LAYER NAME\t        #PARAMS\t     RATIO\t MEM(MB)\n"
        "--model \n"
        "  --w:  \t        524,288\t   100.00%\t    1.00\n"
    )


@pytest.mark.parametrize("bad", [[torch.zeros(2)], "model", 3, None])
def test_other_types_raise_type_error(bad: object) -> None:
    with pytest.raises(TypeError, match=r"torch\.nn\.Module or a state dict"):
        display_parameters(bad)


def test_dict_with_non_tensor_value_raises_type_error() -> None:
    with pytest.raises(TypeError, match="'step' is a int"):
        display_parameters({"w": torch.zeros(2), "step": 3})


def test_bad_max_level_raises_type_error() -> None:
    with pytest.raises(TypeError, match="max_level"):
        display_parameters(Net(), max_level=-1)


def test_parameter_tree_mirrors_the_table() -> None:
    tree = parameter_tree(Tied())
    assert tree["name"] == "model" and tree["params"] == 24 and tree["ratio"] == 1.0
    a, b = tree["children"]
    assert [c["name"] for c in b["children"]] == ["weight(shared)", "bias"]
    assert b["children"][0]["shared"] is True and b["children"][0]["params"] == 0
    assert a["params"] == 20 and a["ratio"] == pytest.approx(20 / 24)
    assert a["children"][0]["fullname"] == "a.weight"
