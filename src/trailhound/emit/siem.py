"""Other SIEMs from the Sigma export, through pySigma's maintained backends (the `convert` extra).

One small class per target says only what differs: which backend, which pipeline, which flavor of
our Sigma export it reads (the taxonomy's names, or ECS names for Elastic's own query languages),
and what it cannot express. Tested with pySigma 1.5.1, pysigma-backend-elasticsearch 2.1.1,
pysigma-backend-splunk 2.1.0 and pysigma-backend-kusto 1.0.1 (the newest backends all need
pySigma < 2).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from . import ConversionRefused
from .sigma import SigmaExport, dump_yaml

#: the Python packages of each target's backend, for messages when the extra is missing
PACKAGES = {"splunk": "pysigma-backend-splunk", "kusto": "pysigma-backend-kusto", "kusto-xdr": "pysigma-backend-kusto",
            "esql": "pysigma-backend-elasticsearch", "lucene": "pysigma-backend-elasticsearch"}


@dataclass
class Converted:
    query: str
    warnings: list[str] = field(default_factory=list)


class Target:
    """A pySigma backend as a target: `backend()` builds it; the rest are the differences."""

    name: ClassVar[str]
    #: "portable" (taxonomy names, the exported Sigma) or "elastic" (ECS names, Lucene regexes)
    flavor: ClassVar[str] = "portable"
    #: the backend has no `cased` modifier: "insensitive" (it compares text case-insensitively, like
    #: Splunk) or "keyword" (it compares keyword text case-sensitively, like Elasticsearch itself)
    uncased: ClassVar[str | None] = None
    #: the backend's correlations count in fixed buckets (bin/date_trunc), not sliding windows
    fixed_windows: ClassVar[bool] = False

    def backend(self, pipeline: Any = None) -> Any:
        """The backend, with `pipeline` (if any) after its own."""
        raise NotImplementedError

    def convert(self, export: SigmaExport, placeholders: Mapping[str, Sequence[str]] | None = None) -> Converted:
        """The export's query; `placeholders` gives `|expand` placeholders their values (pySigma's value-list
        placeholder transformation: a field compared with each value, OR-ed, as the Sigma loader expands them)."""
        docs, warnings = export.documents, list(export.warnings)
        if self.uncased:
            docs, cased, insensitive = _without_cased(docs)
            if self.uncased == "insensitive" and cased:
                warnings.append(f"{self.name} compares text case-insensitively: values Elasticsearch compares "
                                f"case-sensitively ({', '.join(sorted(cased))}) match any case here")
            if self.uncased == "keyword" and insensitive:
                warnings.append(f"{self.name} compares keyword text case-sensitively: values the rule matches in any "
                                f"case ({', '.join(sorted(insensitive))}) match only as written here")
        from sigma.collection import SigmaCollection
        from sigma.exceptions import SigmaError

        try:
            collection = SigmaCollection.from_yaml(dump_yaml(docs))  # a fresh collection: pipelines mutate it
            missing = sorted(_placeholder_names(collection) - set(placeholders or ()))
            if missing:  # the Sigma loader's words (lang/sigma/translate.py), not pySigma's
                raise ConversionRefused(f"|expand placeholder %{missing[0]}% has no values (give them with "
                                        "--sigma-placeholders FILE)")
            queries = self.backend(_placeholder_pipeline(placeholders) if placeholders else None).convert(collection)
        except (SigmaError, NotImplementedError) as e:
            raise ConversionRefused(f"{self.name}: {_reason(e)}") from None
        if self.fixed_windows and any("correlation" in d for d in docs):
            warnings.append(f"{self.name} counts correlations in fixed time buckets: events that straddle a bucket "
                            "edge are not counted together (Elasticsearch's sequences and Sigma use sliding windows)")
        if not queries:
            raise ConversionRefused(f"{self.name}: the backend produced no query")
        return Converted("\n".join(str(q) for q in queries), warnings)


def _placeholder_names(collection: Any) -> set[str]:
    """The names of the `|expand` placeholders the collection's detections use."""
    from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaRule
    from sigma.types import Placeholder, SigmaString

    names: set[str] = set()

    def walk(item: Any) -> None:
        if isinstance(item, SigmaDetection):
            for x in item.detection_items:
                walk(x)
        elif isinstance(item, SigmaDetectionItem):
            for v in item.value:
                if isinstance(v, SigmaString) and v.contains_placeholder():
                    names.update(p.name for p in v.s if isinstance(p, Placeholder))

    for rule in collection.rules:
        if isinstance(rule, SigmaRule):
            for detection in rule.detection.detections.values():
                walk(detection)
    return names


def _placeholder_pipeline(values: Mapping[str, Sequence[str]]) -> Any:
    from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
    from sigma.processing.transformations import ValueListPlaceholderTransformation

    return ProcessingPipeline(name="trailhound placeholders", priority=10,
                              items=[ProcessingItem(ValueListPlaceholderTransformation(),
                                                    identifier="trailhound_placeholders")],
                              vars={k: list(v) for k, v in values.items()})


def _reason(e: Exception) -> str:
    text = str(e).strip() or type(e).__name__
    first = re.sub(r"\s*\(while converting rule .*\)$", "", text.splitlines()[0])
    return re.split(r"\.\s+(?:Please|The query table)", first)[0]


def _without_cased(docs: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], set[str], set[str]]:
    """The documents without `cased`; the fields that had it, and those matched case-insensitively."""
    cased: set[str] = set()
    insensitive: set[str] = set()

    def is_text(v: Any) -> bool:
        return isinstance(v, str) or (isinstance(v, list) and any(isinstance(x, str) for x in v))

    def keys(item: Any) -> Any:
        if isinstance(item, list):
            return [keys(i) for i in item]
        if not isinstance(item, dict):
            return item
        out = {}
        for k, v in item.items():
            name, *mods = str(k).split("|")
            if "cased" in mods:
                cased.add(name)
                k = "|".join([name] + [m for m in mods if m != "cased"])
            elif is_text(v) and not {"re", "cidr"} & set(mods):
                insensitive.add(name)
            out[k] = v
        return out

    result = []
    for d in docs:
        if "detection" in d:
            d = {**d, "detection": {k: (v if k == "condition" else keys(v)) for k, v in d["detection"].items()}}
        result.append(d)
    return result, cased, insensitive


class Splunk(Target):
    name = "splunk"
    uncased = "insensitive"
    fixed_windows = True

    def backend(self, pipeline: Any = None) -> Any:
        from sigma.backends.splunk import SplunkBackend

        return SplunkBackend(pipeline)


class Kusto(Target):
    """Microsoft Sentinel through its ASIM parsers (imProcessCreate, imFileEvent, imAuthentication...): our
    ECS → ASIM pipeline (emit/asim.py), then pySigma's `sentinel_asim_pipeline`."""

    name = "kusto"
    uncased = "insensitive"  # pySigma's Kusto backend writes =~ / in~ / contains whatever the `cased` modifier

    def backend(self, pipeline: Any = None) -> Any:
        from sigma.backends.kusto import KustoBackend
        from sigma.pipelines.sentinelasim import sentinel_asim_pipeline

        from .asim import asim_pipeline, with_common_fields

        ours = asim_pipeline() + with_common_fields(sentinel_asim_pipeline())
        return KustoBackend(pipeline + ours if pipeline else ours)

    def convert(self, export: SigmaExport, placeholders: Mapping[str, Sequence[str]] | None = None) -> Converted:
        try:
            return super().convert(export, placeholders)
        except ConversionRefused as e:
            if "Unable to determine table name" not in str(e):
                raise
            raise ConversionRefused(f"{e}: ASIM's tables are chosen by the logsource's category (process_creation, "
                                    "file_event...) or the auth service, and this rule has neither (a rule over "
                                    "several kinds of events, processes and files, would need several tables)") from None


class KustoXdr(Target):
    """Microsoft Defender XDR's tables (DeviceProcessEvents, DeviceFileEvents...), pySigma's Defender pipeline alone:
    the taxonomy's names convert; the ECS names our pack keeps have no Defender column, so those rules are refused."""

    name = "kusto-xdr"
    uncased = "insensitive"

    def backend(self, pipeline: Any = None) -> Any:
        from sigma.backends.kusto import KustoBackend
        from sigma.pipelines.microsoftxdr import microsoft_xdr_pipeline

        return KustoBackend(pipeline + microsoft_xdr_pipeline() if pipeline else microsoft_xdr_pipeline())


class Esql(Target):
    name = "esql"
    flavor = "elastic"
    uncased = "keyword"
    fixed_windows = True

    def backend(self, pipeline: Any = None) -> Any:
        from sigma.backends.elasticsearch import ESQLBackend

        return ESQLBackend(pipeline)


class Lucene(Target):
    name = "lucene"
    flavor = "elastic"
    uncased = "keyword"

    def backend(self, pipeline: Any = None) -> Any:
        from sigma.backends.elasticsearch import LuceneBackend

        return LuceneBackend(pipeline)


TARGETS: dict[str, type[Target]] = {t.name: t for t in (Splunk, Kusto, KustoXdr, Esql, Lucene)}


def available(name: str) -> str | None:
    """None when the target's backend is installed, else what to install."""
    import importlib.util

    module = {"splunk": "sigma.backends.splunk", "kusto": "sigma.backends.kusto",
              "kusto-xdr": "sigma.backends.kusto"}.get(name, "sigma.backends.elasticsearch")
    try:
        found = importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        found = False
    return None if found else f"{PACKAGES[name]} (pip install 'trailhound[convert]')"
