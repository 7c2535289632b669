#!/usr/bin/env python3
"""A provider that speaks only upstream NixOps4's protocol v0, the way upstream's Rust
framework does: it knows createResourceRequest, updateResourceRequest and the two state
requests, and exits on any message it cannot parse. It stands in for the providers
written for upstream, to show that NixOps4 still drives them (without the additions).

Resource types: `file` (inputs name, contents; no outputs) behaves as upstream's local
`file` does: it is written on create, and an update is refused with upstream's message,
"update called on stateless file resource", because upstream never updates a resource
without state (it creates it afresh). `greeting` (input name; output text) can be updated,
as upstream's stateful types (`memo`, `exec`) can. `memo` is upstream's: input
`initialize_with`, output `value`, kept as first created by updates, and refused without
state. Like upstream, nothing can be deleted: there is no destroy request in v0.
"""
import json
import sys

KNOWN = {"createResourceRequest", "updateResourceRequest", "stateResourceReadRequest", "stateResourceEvent"}


def answer(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def apply(resource_type, inputs):
    if resource_type == "file":
        with open(inputs["name"], "w") as f:
            f.write(inputs["contents"])
        return {}
    if resource_type == "memo":
        return {"value": inputs["initialize_with"]}
    if resource_type == "greeting":
        return {"text": "Hello, " + inputs["name"] + "!"}
    raise ValueError("unknown resource type: " + resource_type)


for line in sys.stdin:
    try:
        message = json.loads(line)
        (key, body), = message.items()
        if key not in KNOWN:
            raise ValueError("unknown message " + key)
    except ValueError as e:
        # Upstream's framework stops serving and exits with status 0.
        print("Could not parse request message: %s" % e, file=sys.stderr)
        sys.exit(0)
    try:
        if key == "createResourceRequest":
            if body["type"] == "memo" and not body["isStateful"]:
                raise ValueError("memo resources require state (isStateful must be true)")
            answer({"createResourceResponse": {"outputProperties": apply(body["type"], body["inputProperties"])}})
        elif key == "updateResourceRequest":
            if body["resource"]["type"] == "file":
                raise RuntimeError("Internal error: update called on stateless file resource")
            if body["resource"]["type"] == "memo":
                answer({"updateResourceResponse": {"outputProperties": {"value": body["resource"]["outputProperties"]["value"]}}})
                continue
            answer({"updateResourceResponse": {"outputProperties": apply(body["resource"]["type"], body["inputProperties"])}})
        else:
            answer({"errorResponse": {"message": "State operations not implemented by resource provider"}})
    except Exception as e:  # upstream's framework turns any handler error into errorResponse
        answer({"errorResponse": {"message": str(e)}})
