"""API Gateway request models generated from the contract's pydantic models, never written twice.

API Gateway validates bodies with JSON Schema draft 4; pydantic writes draft 2020-12. The translation
inlines `$defs` (a model may not refer to another one by `#/$defs` path), turns numeric
`exclusiveMinimum`/`exclusiveMaximum` into draft 4's boolean form, `const` into a one-value `enum`,
`integer` into a whole `number` (2020-12's notion of an integer), and leaves out null defaults.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import aws_apigateway as apigw
from pydantic import BaseModel

DRAFT4 = "http://json-schema.org/draft-04/schema#"


def draft4(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` (pydantic's draft 2020-12, validation mode) as a self-contained draft-4 schema."""
    definitions = schema.get("$defs", {})

    def convert(node: Any) -> Any:
        if isinstance(node, list):
            return [convert(item) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            return convert(definitions[node["$ref"].rsplit("/", 1)[-1]])
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "$defs" or (key == "default" and value is None):
                continue  # definitions are inlined; a null default says nothing (and CDK drops it)
            if key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
                out[key.replace("exclusive", "").lower()] = value
                out[key] = True
            elif key == "const":
                out["enum"] = [value]
            elif key == "type" and value == "integer":
                # Draft 4 validators (API Gateway's) refuse 48.0 as an integer; JSON Schema 2020-12, which
                # the published OpenAPI 3.1 document and pydantic follow, counts it as 48. Same verdict:
                out["type"], out["multipleOf"] = "number", 1
            else:
                out[key] = convert(value)
        return out

    return {"$schema": DRAFT4, **convert(schema)}


def add_request_model(api: apigw.RestApi, model: type[BaseModel]) -> apigw.Model:
    """A `application/json` model of `api` whose schema is `model`'s; the name is the model's title."""
    schema = draft4(model.model_json_schema(mode="validation"))
    name = schema.get("title") or model.__name__
    request_model = api.add_model(name, content_type="application/json", model_name=name, schema=apigw.JsonSchema())
    # The L2 JsonSchema type cannot hold an arbitrary schema; the generated one replaces it as a whole.
    cfn_model = request_model.node.default_child
    assert isinstance(cfn_model, apigw.CfnModel)
    cfn_model.schema = schema
    return request_model
