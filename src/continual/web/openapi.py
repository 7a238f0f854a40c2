"""Corrections to the generated OpenAPI document where a route reads its body itself."""

from __future__ import annotations

from dataclasses import dataclass

from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody, Schema
from litestar.openapi.spec.enums import OpenAPIType

_VALUE = Schema(one_of=[Schema(type=OpenAPIType.NUMBER), Schema(type=OpenAPIType.STRING)])
_ROWS = Schema(
    type=OpenAPIType.OBJECT,
    required=["rows"],
    properties={
        "rows": Schema(
            type=OpenAPIType.ARRAY,
            min_items=1,
            items=Schema(type=OpenAPIType.OBJECT, additional_properties=_VALUE, min_properties=2),
        )
    },
    additional_properties=False,
)


@dataclass
class DataOperation(Operation):
    """``POST /data`` takes JSON rows or CSV text, which Litestar cannot infer."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            description="Labelled rows: features plus the label column (default `target`).",
            content={
                "application/json": OpenAPIMediaType(
                    schema=_ROWS,
                    example={"rows": [{"feature1": 0.1, "feature2": -1.3, "target": 1}]},
                ),
                "text/csv": OpenAPIMediaType(
                    schema=Schema(type=OpenAPIType.STRING),
                    example="feature1,feature2,target\n0.1,-1.3,1\n",
                ),
            },
        )
