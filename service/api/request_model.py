"""The base of every request body's model: unknown fields refused in one error, whatever their number.

``known_keys`` is what a body of a model may say at its top level: the routes check a body's keys
against it before they parse it (``service.api.json_keys``).
"""

from __future__ import annotations

from typing import Any, Self

from pydantic import AliasChoices, BaseModel, ConfigDict, ModelWrapValidatorHandler, model_validator
from pydantic_core import PydanticCustomError

from service.api.json_keys import unknown_fields_issue

__all__ = ["RequestModel", "known_keys"]


class RequestModel(BaseModel):
    """A request body's model: unknown fields are refused with one error, whatever their number.

    pydantic's ``extra="forbid"`` reports each unknown field as an error of its own: 2 million unknown
    keys (25 MB) took 38 s and 2.7 GB to refuse. The routes check a body's top-level keys before they
    parse it (``service.api.json_keys``); this does the same for a model validated any other way, and
    for the objects inside a body. (``extra="forbid"`` stays: the JSON Schema says so, and it words
    the ``target``/``labels`` conflict.)
    """

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="wrap")
    @classmethod
    def _refuse_unknown_fields(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        if isinstance(data, dict):
            known = known_keys(cls)
            unknown = [key for key in data if key not in known]
            if unknown:
                issue = unknown_fields_issue(unknown)
                raise PydanticCustomError(
                    issue.kind, "{detail}", {"detail": issue.msg, "path": list(issue.loc)}
                )
        return handler(data)


_KNOWN_KEYS: dict[type[BaseModel], frozenset[str]] = {}


def known_keys(model: type[BaseModel]) -> frozenset[str]:
    """Every key a body of ``model`` may use: its fields' names and their validation aliases."""
    keys = _KNOWN_KEYS.get(model)
    if keys is None:
        names: set[str] = set()
        for name, field in model.model_fields.items():
            names.add(field.alias or name)
            alias = field.validation_alias
            if isinstance(alias, str):
                names.add(alias)
            elif isinstance(alias, AliasChoices):
                names.update(choice for choice in alias.choices if isinstance(choice, str))
        keys = _KNOWN_KEYS[model] = frozenset(names)
    return keys
