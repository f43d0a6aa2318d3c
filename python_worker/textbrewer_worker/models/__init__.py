"""Loading, creating, saving and describing the models that the worker holds behind handles.

One module per job: ``load`` (checkpoint folders, state-dict files, TorchScript, factories), ``create`` (fresh models,
optionally initialised from a teacher), ``save`` (atomic folder writes), ``describe`` (init reports, parameter
counts); ``tasks``, ``hf_config`` and ``errors`` hold what they share.


Pure library functions: the server maps requests onto them. Every user-facing failure is a
``ModelLoadError`` (or ``ModelSaveError``) whose message starts with the offending field
(``path``, ``task``, ``format``, ``config``, ``factory``, ``factoryArgs``, ``layerMap``, ``initFrom``,
``directory``), quotes the value and says how to fix it. Field names are the TypeScript option names.

Nothing here touches the network: Hugging Face folders are read with ``local_files_only=True``, and a Hub id
(``org/name``) is found in the local Hugging Face cache by ``hub_cache`` or not at all.
Pickle-based files (.pt/.bin/.pkl) are read with ``torch.load(weights_only=True)`` unless the caller
explicitly passes ``weights_only=False`` (TS: ``weightsOnly: false``), which is only for trusted files. A folder
whose config.json names code of its own (``auto_map``) is refused unless ``trust_remote_code=True`` (TS:
``trustRemoteCode: true``); transformers always gets ``trust_remote_code`` explicitly, so it never prompts.
A file that cannot be read (truncated, damaged, not the expected format) is named in the error with the cause.
"""

from .create import create_model
from .describe import init_report, num_parameters
from .errors import ModelLoadError, ModelSaveError
from .load import FORMATS, load_model, load_state_dict_file
from .save import save_model, write_model_files
from .tasks import TASKS, infer_task

__all__ = [
    "FORMATS",
    "TASKS",
    "ModelLoadError",
    "ModelSaveError",
    "create_model",
    "infer_task",
    "init_report",
    "load_model",
    "load_state_dict_file",
    "num_parameters",
    "save_model",
    "write_model_files",
]
