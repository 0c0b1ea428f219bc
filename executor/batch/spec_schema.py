"""The batch spec JSON schema (draft-07), as data.

Owns: a transcription of ``schema/batch_spec.schema.json`` (embedded in Go as
``lib/batches/schema/batch_spec_stringdata.go``, sourcegraph/sourcegraph-public-snapshot,
classic version 1/2 specs) without the ``description``/``examples`` texts. Property order
is the schema's, which is the order errors are reported in.

Must not know: how it is validated (``executor.batch.jsonschema``) or what the fields mean.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BATCH_SPEC_SCHEMA"]

_STRING: dict[str, Any] = {"type": "string"}
_PUBLISHED_FLAG: dict[str, Any] = {
    "oneOf": [{"type": "boolean"}, {"type": "string", "pattern": "^draft$"}]
}

_ON_QUERY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["repositoriesMatchingQuery"],
    "properties": {"repositoriesMatchingQuery": _STRING},
}

_ON_REPOSITORY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["repository"],
    "properties": {
        "repository": _STRING,
        "branch": _STRING,
        "branches": {"type": "array", "items": _STRING},
    },
    # "either branch or branches can be provided, but not both at once".
    "anyOf": [
        {"oneOf": [{"required": ["branch"]}, {"required": ["branches"]}]},
        {"not": {"required": ["branch", "branches"]}},
    ],
}

_STEP: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["run", "container"],
    "properties": {
        "run": _STRING,
        "container": _STRING,
        "outputs": {
            "type": ["object", "null"],
            "additionalProperties": {
                "type": "object",
                "required": ["value"],
                "properties": {
                    "value": _STRING,
                    "format": {"type": "string", "enum": ["json", "yaml", "text"]},
                },
            },
        },
        "env": {
            "oneOf": [
                {"type": "null"},
                {"type": "object", "additionalProperties": _STRING},
                {
                    "type": "array",
                    "items": {
                        "oneOf": [
                            _STRING,
                            {
                                "type": "object",
                                "additionalProperties": _STRING,
                                "minProperties": 1,
                                "maxProperties": 1,
                            },
                        ]
                    },
                },
            ]
        },
        "files": {"type": ["object", "null"], "additionalProperties": _STRING},
        "if": {"oneOf": [{"type": "boolean"}, {"type": "string"}, {"type": "null"}]},
        "mount": {
            "type": ["array", "null"],
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["path", "mountpoint"],
                "properties": {"path": _STRING, "mountpoint": _STRING},
            },
        },
    },
}

BATCH_SPEC_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {
        "version": {"type": "number", "enum": [1, 2]},
        "name": {"type": "string", "pattern": r"^[\w.-]+$"},
        "description": _STRING,
        "on": {"type": ["array", "null"], "items": {"oneOf": [_ON_QUERY, _ON_REPOSITORY]}},
        "workspaces": {
            "type": ["array", "null"],
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["rootAtLocationOf"],
                "properties": {
                    "rootAtLocationOf": _STRING,
                    "in": _STRING,
                    "onlyFetchWorkspace": {"type": "boolean"},
                },
            },
        },
        "steps": {"type": ["array", "null"], "items": _STEP},
        "transformChanges": {
            "type": ["object", "null"],
            "additionalProperties": False,
            "properties": {
                "group": {
                    "type": ["array", "null"],
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["directory", "branch"],
                        "properties": {
                            "directory": {"type": "string", "minLength": 1},
                            "branch": {"type": "string", "minLength": 1},
                            "repository": _STRING,
                        },
                    },
                }
            },
        },
        "importChangesets": {
            "type": ["array", "null"],
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["repository", "externalIDs"],
                "properties": {
                    "repository": _STRING,
                    "externalIDs": {
                        "type": ["array", "null"],
                        "uniqueItems": True,
                        "items": {"oneOf": [_STRING, {"type": "integer"}]},
                    },
                },
            },
        },
        "changesetTemplate": {
            "type": "object",
            "additionalProperties": False,
            "required": ["title", "branch", "commit"],
            "properties": {
                "title": _STRING,
                "body": _STRING,
                "branch": _STRING,
                "fork": {"type": "boolean"},
                "commit": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["message"],
                    "properties": {
                        "message": _STRING,
                        "author": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["name", "email"],
                            "properties": {
                                "name": _STRING,
                                "email": {"type": "string", "format": "email"},
                            },
                        },
                    },
                },
                "published": {
                    "oneOf": [
                        {"type": "null"},
                        _PUBLISHED_FLAG,
                        {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "additionalProperties": _PUBLISHED_FLAG,
                                "minProperties": 1,
                                "maxProperties": 1,
                            },
                        },
                    ]
                },
            },
        },
    },
}
