"""The least any Python WSGI app can do per request: a stored body looked up in a dict.

Served by granian in :mod:`research.serving_floor` beside the real server, so that the
share of the ceiling a recommendation could reach on this HTTP stack is measured rather
than estimated: the bodies are the real server's answers, byte for byte, read from the
JSON file named by ``FLOOR_BODIES`` ({"health": body, "paths": {path: body}}).
"""

import json
import os

with open(os.environ["FLOOR_BODIES"], encoding="utf-8") as stored:
    _STORED = json.load(stored)
_HEALTH = _STORED["health"].encode()
_BODIES = {path: body.encode() for path, body in _STORED["paths"].items()}
_NOT_FOUND = b'{"error": "not found"}'


def app(environ, start_response):
    path = environ["PATH_INFO"]
    body = _HEALTH if path == "/health" else _BODIES.get(path)
    if body is None:
        start_response("404 Not Found", [("Content-Type", "application/json"), ("Content-Length", str(len(_NOT_FOUND)))])
        return [_NOT_FOUND]
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body))), ("X-Served-By", "floor")])
    return [body]
