"""The API's data specs and upload form take exactly the parameters and bounds of the engine's
table of built-in datasets (service.engine.datasets), the one place they are defined."""

from __future__ import annotations

import typing
from typing import Any

import pytest
from pydantic import BaseModel

from service.api.app import create_app
from service.config import Settings
from service.engine.datasets import BUILTIN_DATASETS, SPLIT_PARAMETERS
from service.jobs.specs import DataSpec, UploadedData

JSON_TYPES = {"integer": "integer", "number": "number"}


def builtin_models() -> dict[str, type[BaseModel]]:
    """The built-in data spec models of the DataSpec union, by their `dataset` name."""
    union = typing.get_args(DataSpec)[0]
    models = [typing.get_args(member)[0] for member in typing.get_args(union)]
    return {typing.get_args(model.model_fields["dataset"].annotation)[0]: model
            for model in models if model is not UploadedData}


def bounds(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON Schema property as the engine's table describes a parameter. An optional one
    (default None) is anyOf its bounded type and null."""
    [value] = [part for part in schema.get("anyOf", [schema]) if part["type"] != "null"]
    if "anyOf" in schema:
        assert schema["default"] is None, schema
    return {"type": value["type"], "default": schema["default"],
            "minimum": value["minimum"], "maximum": value["maximum"]}


def described(param: dict[str, Any]) -> dict[str, Any]:
    return {"type": JSON_TYPES[param["type"]], "default": param["default"],
            "minimum": param["minimum"], "maximum": param["maximum"]}


def test_every_builtin_dataset_has_a_spec_model_and_no_other() -> None:
    assert set(builtin_models()) == set(BUILTIN_DATASETS)


@pytest.mark.parametrize("name", sorted(BUILTIN_DATASETS))
def test_a_spec_models_parameters_are_the_engines(name: str) -> None:
    properties = builtin_models()[name].model_json_schema()["properties"]
    split = {param["name"] for param in SPLIT_PARAMETERS}
    params = {key: bounds(value) for key, value in properties.items()
              if key != "dataset" and key not in split}
    assert params == {param["name"]: described(param)
                      for param in BUILTIN_DATASETS[name]["params"]}
    assert {key: bounds(properties[key]) for key in split} == {
        param["name"]: described(param) for param in SPLIT_PARAMETERS}


def test_the_upload_form_splits_within_the_engines_bounds() -> None:
    app = create_app(Settings(database_url="sqlite://", workers=0, _env_file=None))
    schema = app.openapi()
    reference = schema["paths"]["/v1/datasets"]["post"]["requestBody"]["content"][
        "multipart/form-data"]["schema"]["$ref"]
    form = schema["components"]["schemas"][reference.rsplit("/", 1)[1]]["properties"]
    assert {param["name"]: bounds(form[param["name"]]) for param in SPLIT_PARAMETERS} == {
        param["name"]: described(param) for param in SPLIT_PARAMETERS}
