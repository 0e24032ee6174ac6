"""Validates OpenLineage run events against the official JSON schemas.

    openlineage-validate.py SCHEMA_DIR EVENTS.jsonl

SCHEMA_DIR is engine/openlineage: spec/OpenLineage.json, spec/facets/*.json and
Sluice's own facet schemas. Each line of EVENTS.jsonl is one event. The event is
validated against RunEvent, and every facet (run, job, dataset) against the schema
that its _schemaURL names; a facet whose schema is not in SCHEMA_DIR is an error.
Exits 1 with every problem, naming the event's line and the facet.
"""

import json
import pathlib
import sys

from jsonschema import Draft202012Validator
from referencing import Registry, Resource


def main():
    schema_dir, events = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    resources = []
    for path in sorted(schema_dir.rglob("*.json")):
        doc = json.loads(path.read_text())
        resources.append((doc["$id"], Resource.from_contents(doc)))
    registry = Registry().with_resources(resources)
    known = {uri for uri, _ in resources}

    def check(where, instance, url, problems):
        base, _, fragment = url.partition("#")
        if base not in known:
            problems.append(f"{where}: no schema for _schemaURL {url}")
            return
        schema = {"$ref": url}
        validator = Draft202012Validator(
            schema, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER
        )
        for err in validator.iter_errors(instance):
            path = "/".join(str(p) for p in err.absolute_path)
            problems.append(f"{where}: {path}: {err.message}")

    problems = []
    lines = [l for l in events.read_text().splitlines() if l.strip()]
    if not lines:
        problems.append(f"{events}: no events")
    for n, line in enumerate(lines, 1):
        event = json.loads(line)
        where = f"{events}:{n} ({event.get('eventType')})"
        check(where, event, event.get("schemaURL", ""), problems)
        facets = [("run", event.get("run", {}).get("facets", {})), ("job", event.get("job", {}).get("facets", {}))]
        for kind in ("inputs", "outputs"):
            for d in event.get(kind, []):
                facets.append((f"{kind} {d.get('namespace')}/{d.get('name')}", d.get("facets", {})))
        for owner, fs in facets:
            for name, facet in fs.items():
                check(f"{where} {owner} facet {name}", facet, facet.get("_schemaURL", ""), problems)
    for p in problems:
        print(p)
    print(f"{len(lines)} events, {len(problems)} problems")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
