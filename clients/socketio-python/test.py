"""Speaks Flask-SocketAPI's events to the demo server at /socket.io/ with the
unmodified python-socketio client (PyPI), and checks what the client itself received:
states, change events from every source, acknowledgements, api_error, identity.

Runs the whole conversation twice: with the client's default transports (polling,
upgraded to WebSocket) and with polling only.

Usage: python test.py http://127.0.0.1:PORT
"""

import json
import queue
import sys
import time
import urllib.request

import socketio

base = sys.argv[1]
passed = 0
failed = 0
WAIT = 10  # seconds: a generous bound for anything the server sends
SETTLE = 0.5  # seconds for the client's handler threads to finish


def check(name, ok, detail):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print(f"FAIL socketio-python: {name}: {detail}")


def rest(method, path, body=None):
    """A plain HTTP request to the application, not through Socket.IO."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{base}{path}", data=data, method=method)
    if data is not None:
        request.add_header("content-type", "application/json")
    with urllib.request.urlopen(request, timeout=WAIT) as response:
        text = response.read()
        return response.status, json.loads(text) if text else None


class Listener:
    """A client with every server event of Flask-SocketAPI collected.

    python-socketio runs each incoming message's handler on a thread of its own, so
    events may reach the handlers out of the order they came in: `wait` looks for
    the event it wants among all that came, and keeps the others for `unexpected`.
    """

    def __init__(self, transports, headers=None):
        self.events = queue.Queue()
        self.others = []
        self.client = socketio.Client(reconnection=False)
        for name in ("state", "create", "patch", "delete", "api_error"):
            self.client.on(name, handler=lambda data, name=name: self.events.put((name, data)))
        self.client.connect(base, headers=headers or {}, transports=transports, wait_timeout=WAIT)

    def wait(self, name, uri):
        """The first `name` event about `uri` (any, for `api_error`), within WAIT."""
        for i, (other, data) in enumerate(self.others):
            if other == name and (uri is None or data.get("uri") == uri):
                return self.others.pop(i)[1]
        while True:
            try:
                event = self.events.get(timeout=WAIT)
            except queue.Empty:
                return None
            if event[0] == name and (uri is None or event[1].get("uri") == uri):
                return event[1]
            self.others.append(event)

    def unexpected(self):
        """Every event that came and was not waited for, after a moment for any
        handler thread still running."""
        time.sleep(SETTLE)
        while not self.events.empty():
            self.others.append(self.events.get())
        return self.others

    def call(self, event, data):
        return self.client.call(event, data, timeout=WAIT)


def conversation(label, transports):
    me = Listener(transports, headers={"Authorization": "Bearer ada"})
    check(f"{label}: connected", me.client.connected, me.client.transport())

    # subscribe: a state event, and the same answer as the acknowledgement.
    ack = me.call("subscribe", "/items/")
    state = me.wait("state", "/items/")
    check(
        f"{label}: subscribe /items/ -> state",
        state is not None and state["resource"][0] == {"id": 1, "name": "item-1"},
        state,
    )
    check(f"{label}: subscribe acknowledged with the state", ack == state, ack)

    # create: acknowledged with the result; subscribers of the list get a create.
    ack = me.call("create", {"uri": "/items/", "attributes": {"name": f"made by {label}"}})
    check(
        f"{label}: create acknowledged with the result",
        ack["type"] == "result" and ack["status"] == 201 and ack["body"]["name"] == f"made by {label}",
        ack,
    )
    item = ack["body"]["id"]
    created = me.wait("create", "/items/")
    check(f"{label}: create event", created is not None and created["resource"] == ack["body"], created)

    # A plain REST POST to the list is a create event too.
    status, made = rest("POST", "/items", {"name": "made over REST"})
    created = me.wait("create", "/items/")
    check(
        f"{label}: REST POST -> create event",
        status == 201 and created is not None and created["resource"] == made,
        (status, created),
    )

    # A plain REST PATCH is a patch event; subscribed to the item and its list,
    # the client gets it once (see `unexpected` below).
    me.call("subscribe", f"/items/{item}")
    state = me.wait("state", f"/items/{item}")
    check(f"{label}: subscribe /items/{item} -> state", state is not None and state["resource"]["id"] == item, state)
    status, _ = rest("PATCH", f"/items/{item}", {"name": "renamed over REST"})
    patched = me.wait("patch", f"/items/{item}")
    check(
        f"{label}: REST PATCH -> patch event",
        status == 200 and patched is not None and patched["patch"] == {"name": "renamed over REST"},
        (status, patched),
    )

    # delete over Socket.IO, without asking for an acknowledgement.
    me.client.emit("delete", {"uri": f"/items/{item}"})
    deleted = me.wait("delete", f"/items/{item}")
    check(f"{label}: delete event", deleted is not None, deleted)

    # Errors: a URI the rules refuse, and a resource that is not there.
    me.client.emit("subscribe", "items/1")
    error = me.wait("api_error", None)
    check(
        f"{label}: bad URI -> api_error",
        error is not None and error["error"] == "InvalidURIError" and error["status"] == 422 and error["message"],
        error,
    )
    ack = me.call("subscribe", "/items/999999")
    error = me.wait("api_error", None)
    check(
        f"{label}: missing resource -> api_error",
        error is not None and error["error"] == "NotFoundError" and error["status"] == 404,
        error,
    )
    check(f"{label}: ... acknowledged with the error", ack["type"] == "error" and ack["status"] == 404, ack)

    # unsubscribe: no more events of the list, though a REST POST creates an item.
    # The client stays subscribed to /items/7, whose patch comes after that POST on
    # the wire: once it is here, a create event would have been too.
    ack = me.call("unsubscribe", "/items/")
    check(f"{label}: unsubscribe acknowledged", ack == {"type": "unsubscribed", "uri": "/items/"}, ack)
    me.call("subscribe", "/items/7")
    me.wait("state", "/items/7")
    rest("POST", "/items", {"name": "nobody is told"})
    rest("PATCH", "/items/7", {"name": "seven"})
    check(f"{label}: patch of /items/7", me.wait("patch", "/items/7") is not None, "no patch event")
    others = me.unexpected()
    check(f"{label}: no create after unsubscribe, no event twice", others == [], others)

    # Identity: the Authorization header of the connection reaches the routes.
    me.call("subscribe", "/whoami")
    state = me.wait("state", "/whoami")
    check(
        f"{label}: /whoami with the connection's Authorization",
        state is not None and state["resource"] == {"user": "ada"},
        state,
    )
    me.client.disconnect()

    anonymous = Listener(transports)
    ack = anonymous.call("subscribe", "/whoami")
    error = anonymous.wait("api_error", None)
    check(
        f"{label}: /whoami without Authorization -> api_error 401",
        error is not None and error["status"] == 401 and ack["body"] == {"error": "unauthorized"},
        (error, ack),
    )
    anonymous.client.disconnect()


try:
    conversation("default transports", None)
    conversation("polling", ["polling"])
except socketio.exceptions.ConnectionError as err:
    check("connect to /socket.io/", False, f"{err!r}: does the server serve sockets?")

# A browser page of another origin is refused, as a WebSocket upgrade would be: a
# connect_error whose message is the refusal's status and body.
stranger = socketio.Client(reconnection=False)
refusals = []
stranger.on("connect_error", handler=refusals.append)
try:
    stranger.connect(base, headers={"Origin": "http://elsewhere.example"}, wait_timeout=WAIT)
    check("another origin refused", False, "connected")
except socketio.exceptions.ConnectionError:
    message = refusals[0].get("message", "") if refusals and isinstance(refusals[0], dict) else refusals
    check("another origin refused with 403", str(message).startswith("403"), refusals)
stranger.disconnect()

print(f"socketio-python: {passed} passed, {failed} failed")
sys.exit(0 if failed == 0 else 1)
