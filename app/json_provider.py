"""JSON answers serialised with orjson, for the status poll of a long book.

`GET .../batch-ocr/status` carries one object per page, so on a 2000-page job the standard
library's encoder is most of the poll's cost; orjson writes the same JSON several times faster
(docs/performance.md). Anything orjson cannot write natively (datetimes the way Flask writes
them, Markup, integers over 64 bits) goes through Flask's own provider, so answers stay the same.
"""

from __future__ import annotations

from typing import Any

import orjson
from flask.json.provider import DefaultJSONProvider

# Datetimes go to Flask's `default` (HTTP dates), as with the standard provider.
_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME


class OrjsonProvider(DefaultJSONProvider):
    """Flask's JSON provider with orjson doing the writing; reading stays the standard one."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        if kwargs:  # indent, sort_keys and the like: the standard encoder knows them
            return super().dumps(obj, **kwargs)
        return self._bytes(obj).decode()

    def response(self, *args: Any, **kwargs: Any) -> Any:
        obj = self._prepare_response_obj(args, kwargs)
        return self._app.response_class(self._bytes(obj) + b"\n", mimetype=self.mimetype)

    def _bytes(self, obj: Any) -> bytes:
        try:
            return orjson.dumps(obj, default=self.default, option=_OPTIONS)
        except orjson.JSONEncodeError:
            # e.g. an integer over 64 bits, which the standard encoder writes.
            return super().dumps(obj).encode()
