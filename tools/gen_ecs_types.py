"""Regenerate src/trailhound/rules/ecs_types.json from the ECS flat schema in ../shared.

The table maps each ECS field to its Elasticsearch type (plus the multi-field sub-fields
such as `process.command_line.text`), and lists the fields ECS normalizes to arrays.
"""

import gzip
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO.parent / "shared" / "corpora" / "detection-rules" / "detection_rules" / "etc" / "ecs_schemas"
OUT = REPO / "src" / "trailhound" / "rules" / "ecs_types.json"


def main() -> int:
    versions = sorted(SOURCE.glob("*/ecs_flat.json.gz"), key=lambda p: [int(x) for x in p.parent.name.split(".")])
    if not versions:
        print(f"no ECS schema under {SOURCE}", file=sys.stderr)
        return 2
    src = versions[-1]
    flat = json.load(gzip.open(src))
    types: dict[str, str] = {}
    arrays: list[str] = []
    for name, spec in flat.items():
        types[name] = spec["type"]
        for mf in spec.get("multi_fields", []):
            types[mf["flat_name"]] = mf["type"]
        if "array" in spec.get("normalize", []):
            arrays.append(name)
    OUT.write_text(json.dumps({"ecs_version": src.parent.name, "types": dict(sorted(types.items())),
                               "arrays": sorted(arrays)}, indent=0, sort_keys=False) + "\n")
    print(f"wrote {OUT} from ECS {src.parent.name}: {len(types)} fields, {len(arrays)} arrays")
    return 0


if __name__ == "__main__":
    sys.exit(main())
