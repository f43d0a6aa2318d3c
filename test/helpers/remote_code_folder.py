"""Writes into argv[1] a tiny model whose config.json names code in the folder (auto_map), as remote-code models do.

argv[2] is the model_type: "tiny-remote" (its own config class, unknown to transformers) or "bert"."""

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

CONFIG_SOURCE = """from transformers import PretrainedConfig


class TinyConfig(PretrainedConfig):
    model_type = "tiny-remote"

    def __init__(self, width=4, **kwargs):
        self.width = width
        super().__init__(**kwargs)
"""

MODEL_SOURCE = """import torch
from transformers import PreTrainedModel

from .configuration_tiny import TinyConfig


class TinyModel(PreTrainedModel):
    config_class = TinyConfig

    def __init__(self, config):
        super().__init__(config)
        self.proj = torch.nn.Linear(config.width, 2)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, **kwargs):
        x = torch.nn.functional.one_hot(input_ids % self.config.width, self.config.width).float()
        return {"logits": self.proj(x).mean(1)}
"""

folder = Path(sys.argv[1])
folder.mkdir(parents=True)
(folder / "configuration_tiny.py").write_text(CONFIG_SOURCE)
(folder / "modeling_tiny.py").write_text(MODEL_SOURCE)
torch.manual_seed(0)
if sys.argv[2] == "bert":
    from transformers import BertConfig, BertModel

    config = BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16)
    BertModel(config).save_pretrained(str(folder), safe_serialization=True)
    values = json.loads((folder / "config.json").read_text())
else:
    save_file({"proj.weight": torch.randn(2, 4), "proj.bias": torch.zeros(2)}, str(folder / "model.safetensors"))
    values = {"model_type": sys.argv[2], "width": 4, "architectures": ["TinyModel"]}
values["auto_map"] = {"AutoConfig": "configuration_tiny.TinyConfig", "AutoModel": "modeling_tiny.TinyModel"}
(folder / "config.json").write_text(json.dumps(values))
