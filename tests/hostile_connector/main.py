"""A connector that misbehaves on purpose, as the config says (tests of outputs and resources).

Config keys, applied in this order: `api_key` (a secret in the spec; logged), `streams`
([[namespace or null, name], ...], `records` each), `pause_seconds` (after one record and one
stderr line, print nothing for that long), `long_line_mb` (one record of that many MB on a
single line), `cpu_seconds` (busy loop), `allocate_mb` (touch that much memory, 8 MB at a time).
"""

import json
import sys
import time


def record(stream, namespace, data):
    body = {"stream": stream, "data": data, "emitted_at": 1700000000000}
    if namespace is not None:
        body = {"namespace": namespace, **body}
    return json.dumps({"type": "RECORD", "record": body}) + "\n"


def main() -> None:
    args = sys.argv[1:]
    out = sys.stdout
    if args[:1] == ["spec"]:
        secret = {"api_key": {"type": "string", "airbyte_secret": True}}
        spec = {"connectionSpecification": {"type": "object", "properties": secret}}
        out.write(json.dumps({"type": "SPEC", "spec": spec}) + "\n")
        return
    with open(args[args.index("--config") + 1]) as f:
        config = json.load(f)
    if config.get("api_key"):  # a careless connector logs its secret
        out.write(json.dumps({"type": "LOG", "log": {"level": "INFO", "message": f"key={config['api_key']}"}}) + "\n")
    for namespace, name in config.get("streams", []):
        for i in range(config.get("records", 3)):
            out.write(record(name, namespace, {"id": i, "stream": name}))
    out.flush()  # printed before whatever comes next kills it
    if config.get("pause_seconds"):
        out.write(record("paused", None, {"id": 0}))
        out.flush()
        sys.stderr.write("about to pause\n")
        sys.stderr.flush()
        time.sleep(config["pause_seconds"])
        out.write(record("paused", None, {"id": 1}))
    if config.get("long_line_mb"):
        out.write(record("long", None, {"id": 0, "payload": "x" * int(config["long_line_mb"] * 2**20)}))
        out.write(record("long", None, {"id": 1}))
    if config.get("cpu_seconds"):
        end = time.process_time() + config["cpu_seconds"]
        while time.process_time() < end:
            pass
    if config.get("allocate_mb"):
        held = []
        for _ in range(int(config["allocate_mb"]) // 8):
            held.append(b"\x01" * (8 * 2**20))  # not zeros: every page is touched
    out.write(json.dumps({"type": "LOG", "log": {"level": "INFO", "message": "done"}}) + "\n")


main()
