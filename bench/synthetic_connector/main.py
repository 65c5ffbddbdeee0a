"""A connector that prints N Airbyte RECORD messages as fast as it can (N from the config's `records`)."""

import json
import sys


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["spec"]:
        print(json.dumps({"type": "SPEC", "spec": {"connectionSpecification": {"type": "object"}}}))
        return
    with open(args[args.index("--config") + 1]) as f:
        config = json.load(f)
    total, batch = int(config["records"]), 10_000
    padding = "x" * 200
    template = (
        '{"type":"RECORD","record":{"stream":"bench","emitted_at":1700000000000,'
        '"data":{"id":%d,"name":"user %d","payload":"' + padding + '"}}}\n'
    )
    out = sys.stdout.buffer
    for start in range(0, total, batch):
        out.write("".join(template % (i, i) for i in range(start, min(start + batch, total))).encode())
    state = {"type": "STREAM", "stream": {"stream_descriptor": {"name": "bench"}, "stream_state": {"id": total}}}
    out.write(json.dumps({"type": "STATE", "state": state}).encode() + b"\n")


main()
