"""A BERT encoder with two heads, for examples/multi-task.ts: a sentence head (pooler + classifier, as in
BertForSequenceClassification) and a token head (a classifier on every token, as in
BertForTokenClassification).

Loaded through the worker's Python-factory path:

    worker.loadModel({ factory: "examples/shared/two_heads.py:build", factoryArgs: { ... } })

The forward returns both heads' logits, ``sentence_logits`` [batch, sentence_labels] and ``token_logits``
[batch, seq, token_labels], plus ``hidden_states`` / ``attentions`` when asked for, so each task's adaptor
picks its head. With ``labels`` it also returns ``loss``: cross-entropy of the sentence head for labels of
shape [batch], of the token head (positions labelled -100 ignored) for labels of shape [batch, seq].
"""

from __future__ import annotations

from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn
from transformers import AutoConfig, BertConfig, BertModel


class TwoHeadBert(nn.Module):
    def __init__(self, config: BertConfig, sentence_labels: int, token_labels: int) -> None:
        super().__init__()
        self.config = config  # the worker reads it to ask for hidden states only when an adaptor needs them
        self.bert = BertModel(config, add_pooling_layer=True)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.sentence_classifier = nn.Linear(config.hidden_size, sentence_labels)
        self.token_classifier = nn.Linear(config.hidden_size, token_labels)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
    ) -> dict[str, Any]:
        out = self.bert(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
        )
        sentence_logits = self.sentence_classifier(self.dropout(out.pooler_output))
        token_logits = self.token_classifier(self.dropout(out.last_hidden_state))
        loss = None
        if labels is not None:
            if labels.dim() == 1:
                loss = nn.functional.cross_entropy(sentence_logits, labels)
            else:
                loss = nn.functional.cross_entropy(
                    token_logits.reshape(-1, token_logits.shape[-1]), labels.reshape(-1), ignore_index=-100
                )
        result = {
            "loss": loss,
            "sentence_logits": sentence_logits,
            "token_logits": token_logits,
            "hidden_states": out.hidden_states,
            "attentions": out.attentions,
        }
        return {k: v for k, v in result.items() if v is not None}


def _weights(folder: str, prefix: str = "bert.") -> dict[str, torch.Tensor]:
    """The safetensors weights of a Hugging Face folder, with `prefix` taken off the names that have it."""
    weights = load_file(f"{folder}/model.safetensors")
    return {k.removeprefix(prefix): v for k, v in weights.items()}


def build(
    base: str,
    layer_map: list[int],
    sentence_labels: int = 2,
    token_labels: int = 9,
    encoder_from: list[str] | None = None,
    sentence_head_from: str | None = None,
    token_head_from: str | None = None,
) -> TwoHeadBert:
    """A TwoHeadBert with ``len(layer_map)`` layers and the config of the BERT folder ``base``.

    Given ``encoder_from`` (BERT folders with safetensors, e.g. fine-tuned teachers), the embeddings and
    layer i start as the mean of those folders' embeddings and layer ``layer_map[i]``.
    ``sentence_head_from`` (a BertForSequenceClassification folder) gives the pooler and the sentence
    classifier, ``token_head_from`` (a BertForTokenClassification folder) the token classifier. Without
    them those parts keep their random init
    (as when the worker then loads a saved state dict over the model).
    """
    config = AutoConfig.from_pretrained(base, local_files_only=True)
    config.num_hidden_layers = len(layer_map)
    model = TwoHeadBert(config, sentence_labels, token_labels)
    if encoder_from:
        states = [_weights(folder) for folder in encoder_from]
        mapped: dict[str, torch.Tensor] = {}
        for key, own in model.bert.state_dict().items():
            source = key
            if key.startswith("encoder.layer."):
                index, rest = key[len("encoder.layer.") :].split(".", 1)
                source = f"encoder.layer.{layer_map[int(index)]}.{rest}"
            found = [s[source].float() for s in states if source in s and s[source].shape == own.shape]
            mapped[key] = torch.stack(found).mean(0) if found else own  # e.g. no pooler in a token classifier
        model.bert.load_state_dict(mapped)
    if sentence_head_from:
        head = _weights(sentence_head_from)
        model.bert.pooler.load_state_dict({k[len("pooler.") :]: v for k, v in head.items() if k.startswith("pooler.")})
        model.sentence_classifier.load_state_dict(
            {k[len("classifier.") :]: v for k, v in head.items() if k.startswith("classifier.")}
        )
    if token_head_from:
        head = _weights(token_head_from)
        model.token_classifier.load_state_dict(
            {k[len("classifier.") :]: v for k, v in head.items() if k.startswith("classifier.")}
        )
    return model
