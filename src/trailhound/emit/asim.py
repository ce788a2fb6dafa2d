"""Our Sigma export's ECS names as Microsoft Sentinel's ASIM parsers name them (the `kusto` target).

The export keeps ECS fields the Sigma taxonomy lacks (`host.os.type`, `event.action`, `event.outcome`...).
This pipeline runs before pySigma's `sentinel_asim_pipeline` and says, as data, which of them have an ASIM
field with the same meaning (renamed, values spelled as ASIM spells them) and which the ASIM table itself
implies (dropped only then: imProcessCreate holds only process starts, imAuthentication only
authentications). Everything else stays, so pySigma refuses the rule naming the field: never a weaker query.
Only `sigma` imports: load it from the functions that convert.
"""

from __future__ import annotations

from typing import Any

#: Linux sshd/PAM auth logs (logsource service: auth) are authentications: ASIM's imAuthentication parser
AUTH_TABLE = "imAuthentication"

#: ECS field → (ASIM field, {ECS value: ASIM value}); the values ASIM documents for each field
RENAMES: dict[str, tuple[str, dict[str, str]]] = {
    # the reporting device's OS (ASIM common field DvcOs: "Linux", "Windows", "iOS"...)
    "host.os.type": ("DvcOs", {"linux": "Linux", "windows": "Windows", "macos": "macOS"}),
    # ASIM's EventResult: Success, Partial, Failure, NA
    "event.outcome": ("EventResult", {"success": "Success", "failure": "Failure"}),
}

#: (logsource category, field, ASIM field) with the same meaning; pySigma's own mapping is wrong for these in
#: imFileEvent (Sigma's TargetFilename is a full path, ASIM's TargetFileName a bare name; Sigma's Image is the
#: acting process, pySigma maps it to the target file's path), so ours runs first
FILE_FIELDS = {
    "file.name": "TargetFileName",  # both: the file's name without its directory
    "file.path": "TargetFilePath",  # both: the full path
    "TargetFilename": "TargetFilePath",
    "Image": "ActingProcessName",  # ASIM: the acting process's executable, as a full path (Sysmon's Image)
}
#: in an authentication (ECS user.name: the account logging in; source.ip: where from) the same as ASIM's
AUTH_FIELDS = {"user.name": "TargetUsername", "source.ip": "SrcIpAddr"}
FILE_CATEGORIES = ("file_event", "file_delete", "file_change", "file_access", "file_rename")

#: in imAuthentication pySigma maps DvcOs to "SrcDvcOs or TargetDvcOs" (weaker); a Linux auth log (sshd, PAM) is
#: written by the host logged into: ASIM's target device
AUTH_RENAMES = {"host.os.type": "TargetDvcOs"}

#: ASIM common fields (present in every ASIM schema) that pySigma's table data lists only as "Dvc fields";
#: its field check must accept the ones we map to
COMMON_FIELDS = ("DvcOs", "EventResult")

#: (logsource category or service, ECS field, values) the table implies: the detection item is dropped only when
#: all its values are among these (a list of synonyms for what every row of that table is)
IMPLIED: tuple[tuple[dict[str, str], str, tuple[str, ...]], ...] = (
    ({"category": "process_creation"}, "event.category", ("process",)),
    ({"category": "process_creation"}, "event.type", ("start",)),
    # the ECS spellings of "a process started" (Elastic Defend, auditd, Auditbeat, Sysmon for Linux...)
    ({"category": "process_creation"}, "event.action", ("exec", "exec_event", "start", "executed",
                                                        "process_started")),
    ({"service": "auth"}, "event.category", ("authentication",)),
)

#: (logsource, ECS field, ASIM field, {ECS value: ASIM value}) renamed only when every value has an ASIM spelling
VALUE_MAPS: tuple[tuple[dict[str, str], str, str, dict[str, str]], ...] = (
    # a login attempt (sshd's or PAM's) is ASIM's Logon event type; logouts are Logoff
    ({"service": "auth"}, "event.action", "EventType", {"ssh_login": "Logon", "user_login": "Logon"}),
    ({"category": "file_event"}, "event.type", "EventType", {"creation": "FileCreated"}),
)


def _all_of(values: Any) -> str:
    import re

    return "^(?:" + "|".join(re.escape(v) for v in values) + ")$"


def _renamed(fields: dict[str, str]) -> Any:
    from sigma.processing.transformations import FieldMappingTransformation

    return FieldMappingTransformation({k: v for k, v in fields.items()})


def asim_pipeline() -> Any:
    """The ECS → ASIM processing pipeline (prepend it to pySigma's `sentinel_asim_pipeline()`)."""
    from sigma.processing.conditions import IncludeFieldCondition, LogsourceCondition, MatchStringCondition
    from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
    from sigma.processing.transformations import (
        DropDetectionItemTransformation,
        FieldMappingTransformation,
        MapStringTransformation,
        SetStateTransformation,
    )

    items: list[ProcessingItem] = [
        ProcessingItem(SetStateTransformation("query_table", AUTH_TABLE), identifier="trailhound_asim_auth_table",
                       rule_conditions=[LogsourceCondition(product="linux", service="auth")]),
    ]
    for logsource, ecs, values in IMPLIED:
        items.append(ProcessingItem(
            DropDetectionItemTransformation(), identifier=f"trailhound_asim_implied_{ecs}",
            rule_conditions=[LogsourceCondition(**logsource)], field_name_conditions=[IncludeFieldCondition([ecs])],
            detection_item_conditions=[MatchStringCondition(cond="all", pattern=_all_of(values))]))
    for logsource, ecs, asim, mapping in VALUE_MAPS:
        condition = dict(rule_conditions=[LogsourceCondition(**logsource)],
                         detection_item_conditions=[MatchStringCondition(cond="all", pattern=_all_of(mapping))])
        items.append(ProcessingItem(MapStringTransformation(dict(mapping)), identifier=f"trailhound_asim_values_{ecs}",
                                    field_name_conditions=[IncludeFieldCondition([ecs])], **condition))  # type: ignore[arg-type]
        items.append(ProcessingItem(FieldMappingTransformation({ecs: asim}), identifier=f"trailhound_asim_{ecs}",
                                    field_name_conditions=[IncludeFieldCondition([ecs])],
                                    rule_conditions=[LogsourceCondition(**logsource)],
                                    detection_item_conditions=[MatchStringCondition(
                                        cond="all", pattern=_all_of(mapping.values()))]))
    items.append(ProcessingItem(_renamed(FILE_FIELDS), identifier="trailhound_asim_file_fields",
                                rule_conditions=[LogsourceCondition(category=c) for c in FILE_CATEGORIES],
                                rule_condition_linking=any))
    items.append(_process_name_item())
    items.append(ProcessingItem(_renamed(AUTH_FIELDS), identifier="trailhound_asim_auth_fields",
                                rule_conditions=[LogsourceCondition(product="linux", service="auth")]))
    for ecs, (asim, mapping) in RENAMES.items():
        items.append(ProcessingItem(MapStringTransformation(dict(mapping)), identifier=f"trailhound_asim_values_{ecs}",
                                    field_name_conditions=[IncludeFieldCondition([ecs])],
                                    detection_item_conditions=[MatchStringCondition(cond="all",
                                                                                    pattern=_all_of(mapping))]))
        if ecs in AUTH_RENAMES:  # first: a rename leaves no `ecs` field for the general one
            items.append(ProcessingItem(
                FieldMappingTransformation({ecs: AUTH_RENAMES[ecs]}), identifier=f"trailhound_asim_auth_{ecs}",
                field_name_conditions=[IncludeFieldCondition([ecs])],
                rule_conditions=[LogsourceCondition(product="linux", service="auth")],
                detection_item_conditions=[MatchStringCondition(cond="all", pattern=_all_of(mapping.values()))]))
        items.append(ProcessingItem(FieldMappingTransformation({ecs: asim}), identifier=f"trailhound_asim_{ecs}",
                                    field_name_conditions=[IncludeFieldCondition([ecs])],
                                    detection_item_conditions=[MatchStringCondition(
                                        cond="all", pattern=_all_of(mapping.values()))]))
    return ProcessingPipeline(name="trailhound ECS to Sentinel ASIM", priority=5, items=items)


def with_common_fields(pipeline: Any) -> Any:
    """pySigma's ASIM pipeline, its field check also accepting the ASIM common fields we map to."""
    from sigma.processing.conditions import ExcludeFieldCondition

    for item in pipeline.items:
        if str(item.identifier or "").startswith("sentinel_asim_unsupported_fields_"):
            for condition in item.field_name_conditions:
                if isinstance(condition, ExcludeFieldCondition):
                    condition.fields = list(condition.fields) + list(COMMON_FIELDS)
    return pipeline


#: ECS process names (Sigma export: OriginalFileName is our process.name) → ASIM's process field. ASIM names a
#: process by its executable ("C:\Windows\explorer.exe"; Linux parsers fill it from Sysmon's Image, a full path),
#: so a name is that field ending in "/name" or, where a parser stores a bare name, equal to it
PROCESS_NAMES = {"OriginalFileName": "TargetProcessName", "process.name": "TargetProcessName",
                 "process.parent.name": "ParentProcessName"}


def _process_name_item() -> Any:
    from sigma.exceptions import SigmaTransformationError
    from sigma.processing.pipeline import ProcessingItem
    from sigma.processing.transformations.base import DetectionItemTransformation
    from sigma.rule import SigmaDetectionItem
    from sigma.types import SigmaRegularExpression, SigmaRegularExpressionFlag, SigmaString, SpecialChars

    class ProcessName(DetectionItemTransformation):
        """`name: X` → `path endswith "/X" or path == "X"`; `name|startswith: X` → a regex on the path's last part;
        any other comparison of a name is refused with the reason (pySigma would name its own unknown field)."""

        def apply_detection_item(self, detection_item: SigmaDetectionItem) -> None:
            asim = PROCESS_NAMES.get(detection_item.field or "")
            if asim is None:
                return
            values = detection_item.value
            if values and all(isinstance(v, SigmaString) and not v.contains_special() for v in values):
                detection_item.value = [w for v in values if isinstance(v, SigmaString) for w in (SigmaString("*/") + v, v)]
            elif values and all(_prefix(v) is not None for v in values):
                import re

                detection_item.value = [SigmaRegularExpression(f"(?:^|/){re.escape(str(_prefix(v)))}[^/]*$",
                                                               {SigmaRegularExpressionFlag.IGNORECASE})
                                        for v in values]
            else:
                raise SigmaTransformationError(
                    f"ASIM names a process by its executable path ({asim}), and {detection_item.field} "
                    "(the process name) is compared here in a way that has no faithful form on a path")
            detection_item.field = asim
            self.processing_item_applied(detection_item)

    def _prefix(v: Any) -> str | None:
        """X for a `startswith` value X* (no other wildcard), else None."""
        if not isinstance(v, SigmaString) or not v.s or v.s[-1] != SpecialChars.WILDCARD_MULTI:
            return None
        head = v.s[:-1]
        text = [p for p in head if isinstance(p, str)]
        return "".join(text) if head and len(text) == len(head) else None

    from sigma.processing.conditions import LogsourceCondition

    return ProcessingItem(ProcessName(), identifier="trailhound_asim_process_names",
                          rule_conditions=[LogsourceCondition(category="process_creation")])
