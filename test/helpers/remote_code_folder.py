"""A tiny model whose config.json names code in the folder (auto_map), as remote-code models do.

Run as a script: writes into argv[1], with argv[2] the model_type: "tiny-remote" (its own config class, unknown to
transformers) or "bert". The worker's pytest suite imports `write_remote_code_folder` from here."""

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

AUTO_MAP = {"AutoConfig": "configuration_tiny.TinyConfig", "AutoModel": "modeling_tiny.TinyModel"}


def write_remote_code_folder(folder: Path, model_type: str = "tiny-remote") -> Path:
    folder.mkdir(parents=True)
    (folder / "configuration_tiny.py").write_text(CONFIG_SOURCE)
    (folder / "modeling_tiny.py").write_text(MODEL_SOURCE)
    torch.manual_seed(0)
    if model_type == "bert":
        from transformers import BertConfig, BertModel

        config = BertConfig(
            vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16
        )
        BertModel(config).save_pretrained(str(folder), safe_serialization=True)
        values = json.loads((folder / "config.json").read_text())
    else:
        save_file({"proj.weight": torch.randn(2, 4), "proj.bias": torch.zeros(2)}, str(folder / "model.safetensors"))
        values = {"model_type": model_type, "width": 4, "architectures": ["TinyModel"]}
    values["auto_map"] = AUTO_MAP
    (folder / "config.json").write_text(json.dumps(values))
    return folder


if __name__ == "__main__":
    write_remote_code_folder(Path(sys.argv[1]), sys.argv[2])
