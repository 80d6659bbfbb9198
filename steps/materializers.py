"""ZenML artifacts for trustops' own records: readable JSON, rebuilt and validated as ZenML rebuilds typed parameters.

A registered model's facts (:class:`~trustops.registry.RegisteredModel`) and a loaded data set's
(:class:`~trustops.data.loading.DatasetInfo`) travel between steps as themselves, typed in every
step's signature, instead of as dicts each step rebuilds.  ZenML has no materializer for plain
dataclasses, and its fallback (cloudpickle) is neither readable in the dashboard nor safe across
versions; this one writes the record's ``to_dict`` as ``record.json``.

Defining the class registers it in ZenML's materializer registry for those types (the steps that
return them import this module).  It is not passed to ``@step(output_materializers=...)``: ZenML
resolves a class given there to its source when the step is defined, which needs the source root
before the CLI has configured ZenML.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from zenml.enums import ArtifactType
from zenml.materializers.base_materializer import BaseMaterializer
from zenml.utils import yaml_utils

from trustops.data.loading import DatasetInfo
from trustops.registry import RegisteredModel
from trustops.settings import rebuild

RECORD_FILE = "record.json"


class RecordMaterializer(BaseMaterializer):
    """A frozen trustops record (a dataclass with ``to_dict``), stored as JSON and rebuilt by :func:`~trustops.settings.rebuild`."""

    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (RegisteredModel, DatasetInfo)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.DATA

    def load(self, data_type: type[Any]) -> Any:
        return rebuild(data_type, yaml_utils.read_json(os.path.join(self.uri, RECORD_FILE)))

    def save(self, data: Any) -> None:
        yaml_utils.write_json(os.path.join(self.uri, RECORD_FILE), data.to_dict())
