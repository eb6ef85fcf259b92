"""Sends one batch to the demo server with the unmodified google-api-python-client
(`BatchHttpRequest` with a custom `batch_uri` and plain `HttpRequest` objects, no
credentials) and checks what the client itself parsed.

Usage: python test.py http://127.0.0.1:PORT
With CAPTURE_DIR set, the multipart request and response are saved there (fixtures).
"""

import json
import os
import sys

import httplib2
from googleapiclient.errors import HttpError
from googleapiclient.http import BatchHttpRequest, HttpRequest

base = sys.argv[1]
passed = 0
failed = 0


def check(name, ok, detail):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print(f"FAIL google-python: {name}: {detail}")


class CapturingHttp(httplib2.Http):
    """An httplib2.Http that keeps the batch request and response bytes."""

    def request(self, uri, method="GET", body=None, headers=None, **kwargs):
        resp, content = super().request(uri, method=method, body=body, headers=headers, **kwargs)
        capture = os.environ.get("CAPTURE_DIR")
        if capture and uri.endswith("/batch"):
            with open(os.path.join(capture, "client-request.txt"), "wb") as f:
                f.write(f"content-type: {headers['content-type']}\n\n".encode() + body.encode())
            with open(os.path.join(capture, "demo-response.txt"), "wb") as f:
                f.write(f"content-type: {resp['content-type']}\n\n".encode() + content)
        return resp, content


def parse_json(resp, content):
    return json.loads(content) if content else None


http = CapturingHttp()
results = {}


def callback(request_id, response, exception):
    results[request_id] = (response, exception)


def request(path, method="GET", body=None):
    headers = {"content-type": "application/json"} if body is not None else {}
    return HttpRequest(http, parse_json, f"{base}{path}", method=method, body=body, headers=headers)


batch = BatchHttpRequest(callback=callback, batch_uri=f"{base}/batch")
batch.add(request("/items/1"), request_id="get")
batch.add(request("/items", "POST", json.dumps({"name": "from google client"})), request_id="create")
batch.add(request("/items/4", "PATCH", json.dumps({"name": "renamed by google client"})), request_id="rename")
batch.add(request("/items/5", "DELETE"), request_id="remove")
batch.add(request("/items/999999"), request_id="missing")
try:
    batch.execute(http=http)
except Exception as err:  # the client raises on a batch it cannot parse
    check("batch executed", False, repr(err))

get, error = results.get("get", (None, "no result"))
check("GET /items/1", error is None and get == {"id": 1, "name": "item-1"}, f"{get!r} {error!r}")
created, error = results.get("create", (None, "no result"))
check(
    "POST /items",
    error is None and created["name"] == "from google client" and created["id"] > 1000,
    f"{created!r} {error!r}",
)
renamed, error = results.get("rename", (None, "no result"))
check("PATCH /items/4", error is None and renamed == {"id": 4, "name": "renamed by google client"}, f"{renamed!r} {error!r}")
removed, error = results.get("remove", (None, "no result"))
check("DELETE /items/5", error is None and removed is None, f"{removed!r} {error!r}")
missing, error = results.get("missing", (None, "no result"))
check(
    "404",
    isinstance(error, HttpError) and error.resp.status == 404 and json.loads(error.content) == {"error": "not found"},
    f"{missing!r} {error!r}",
)
check("every request answered, matched by Content-ID", sorted(results) == ["create", "get", "missing", "remove", "rename"], sorted(results))

print(f"google-python: {passed} passed, {failed} failed")
sys.exit(0 if failed == 0 else 1)
