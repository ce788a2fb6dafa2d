"""Shared by the watch tests: feed files to the live pipeline in random chunks and collect what the sinks get."""

from __future__ import annotations

import random

import orjson

from trailhound.pipeline.watch import StreamPipeline
from trailhound.sources.formats import ReadOptions
from trailhound.sources.inputs import Source
from trailhound.sources.normalize import head_lines
from trailhound.sources.tail import LineCutter, StreamDecoder, format_for, read_options

NOW = "2026-01-01T00:00:00.000Z"


class Keep:
    """A sink that keeps the last version of each alert (by uuid), as JSON text with sorted keys."""

    def __init__(self) -> None:
        self.out: dict[str, bytes] = {}
        self.writes = 0
        self.times: dict[str, int] = {}  # writes per id (two events alike in every field give one id)

    def write(self, alerts) -> None:
        for a in alerts:
            self.writes += 1
            self.times[a["kibana.alert.uuid"]] = self.times.get(a["kibana.alert.uuid"], 0) + 1
            self.out[a["kibana.alert.uuid"]] = orjson.dumps(a, option=orjson.OPT_SORT_KEYS)

    def close(self) -> None:
        pass


def stream(planned, paths: list[str], rng: random.Random, *, order: list[list[int]] | None = None,
           checkpoints: float = 0.2, max_chunks: int = 30) -> tuple[Keep, StreamPipeline]:
    """The alerts of the live pipeline over `paths`, each cut at random byte offsets, the pieces of the files of
    each group of `order` (indexes into paths; default: all at once) appended in a random interleaving, a step
    after a random share of them and the state through a JSON checkpoint after others."""
    sink = Keep()
    pipe = StreamPipeline(planned, [sink], now=NOW)
    decoders, cutters, chunks = [], [], []
    for path in paths:
        src = Source.open(path)
        fmt = format_for(head_lines(src), None)
        decoders.append(StreamDecoder(src.name, fmt, read_options(path, ReadOptions()), lambda n, r: None))
        pipe.add_source(src.name, fmt is not None)
        # a later group's file has not begun: it holds nobody back (the files of one group all hold each other)
        pipe.sources[-1].idle = order is not None
        data = open(path, "rb").read()
        cuts = sorted(rng.sample(range(len(data)), min(len(data), rng.randint(1, max_chunks))))
        bounds = [0] + cuts + [len(data)]
        chunks.append([data[a:b] for a, b in zip(bounds, bounds[1:])])
        cutters.append(LineCutter())
    pos = [0] * len(paths)
    begun: set[int] = set()
    for group in order or [list(range(len(paths)))]:
        begun.update(group)
        for i in group:  # the group's files begin together: each holds the others back from the start
            pipe.sources[i].idle = False
        sequence = [i for i in group for _ in chunks[i]]
        rng.shuffle(sequence)
        for i in sequence:
            lines = cutters[i].feed(chunks[i][pos[i]])
            pos[i] += 1
            for doc, line in decoders[i].push(lines):
                pipe.add(i, doc, line)
            if pos[i] == len(chunks[i]):
                rest = decoders[i].push(cutters[i].flush()) + decoders[i].close()
                for doc, line in rest:
                    pipe.add(i, doc, line)
                pipe.close_source(i)
            if rng.random() < 0.5:
                pipe.step()
            if rng.random() < checkpoints:
                pipe = StreamPipeline.from_dict(planned, orjson.loads(orjson.dumps(pipe.to_dict())), [sink], now=NOW)
                # idleness is not saved (a restarted watch waits for its inputs until they prove idle): the files
                # of later groups, not begun, are idle again as the follower would find them
                for j, src in enumerate(pipe.sources):
                    src.idle = order is not None and j not in begun
    pipe.finish()
    return sink, pipe
