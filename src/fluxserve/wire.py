"""Tasks and errors in the seeds' JSON shapes: every scalar a string, unix-second times.

Pure functions over plain records, shared by the API (and readable by the client SDK).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fluxserve.catalog.model import ToolSpec
    from fluxserve.tasks.records import OutputRecord, TaskRecord


def seconds(value: float) -> str:
    """Unix seconds as a string; "0" for a time not reached."""
    return str(int(value)) if value else "0"


def file_url(public_url: str, accesskey: str, name: str) -> str:
    return f"{public_url}/v1/File/{accesskey}/{name}"


def output_to_wire(output: OutputRecord, task_uuid: str, public_url: str) -> dict[str, Any]:
    return {
        "id": output.id,
        "name": output.name,
        "contenttype": output.contenttype,
        "parentid": output.parentid,
        "uuid": task_uuid,
        "size": str(output.size),
        "addedtime": seconds(output.addedtime),
        "modifiedtime": seconds(output.modifiedtime),
        "accesskey": output.accesskey,
        "foldercount": "0",
        "filecount": "0",
        "ispublic": 0,
        "expiretime": None,
        "url": file_url(public_url, output.accesskey, output.name),
    }


def task_to_wire(task: TaskRecord, public_url: str, tool: ToolSpec | None = None) -> dict[str, Any]:
    """One task as Detail, Kill, Cancel and List show it (the union of the seeds' examples)."""
    times = task.times
    elapsed = 0.0
    if times["starttime"]:
        elapsed = max(
            0.0, (times["endtime"] or times["postprocessendtime"] or times["starttime"]) - times["starttime"]
        )
    outputs = [output_to_wire(output, task.uuid, public_url) for output in task.outputs]
    owner, _, project = task.tool.partition("/")
    failed = task.pexit not in ("", "0")
    return {
        "id": task.taskid,
        "uuid": task.uuid,
        "name": "",
        "socketaccesstoken": task.token,
        "parameters": task.parameters,
        "debugoutput": task.debugoutput,
        "debugerror": task.debugerror,
        "starttime": seconds(times["starttime"]),
        "endtime": seconds(times["endtime"]),
        "elapsedseconds": f"{elapsed:.4f}",
        "status": task.status.value,
        "cps": "0.000000000000",
        "totalcost": "0" if failed else "0.000000000000",  # tasks.md: a failed task costs "0"
        "guestid": None,
        "projectid": str(task.project_id),
        "modelid": str(tool.id) if tool else "0",
        "description": "",
        "basemodelid": "0",
        "runtype": "model",
        "modelfolderid": "",
        "modelfileid": "",
        "callbackurl": task.callbackurl,
        "marketplaceid": None,
        "createtime": seconds(times["createtime"]),
        "canceltime": seconds(times["canceltime"]),
        "assigntime": seconds(times["assigntime"]),
        "accepttime": seconds(times["accepttime"]),
        "preprocessstarttime": seconds(times["preprocessstarttime"]),
        "preprocessendtime": seconds(times["preprocessendtime"]),
        "postprocessstarttime": seconds(times["postprocessstarttime"]),
        "postprocessendtime": seconds(times["postprocessendtime"]),
        "pexit": task.pexit,
        "categories": json.dumps(tool.categories if tool else []),
        "outputs": outputs,
        "size": str(sum(output.size for output in task.outputs)),
        # Not in the seeds' examples, read by Wiro's own clients (Wiro-MCP's Task type):
        "modelslugowner": owner,
        "modelslugproject": project,
        "modeldescription": tool.description if tool else "",
    }


def error_body(errors: list[tuple[int, str]]) -> dict[str, Any]:
    return {"result": False, "errors": [{"code": code, "message": message} for code, message in errors]}


def ok_body(**fields: Any) -> dict[str, Any]:
    """A success answer: ``errors`` first and ``result`` last, in the seeds' field order."""
    return {"errors": [], **fields, "result": True}


def progress_line(step: int, total: int, elapsed: float) -> dict[str, str]:
    """Wiro's progressGenerate message (also written to debugoutput while a task runs)."""
    speed = step / elapsed if elapsed > 0 else 0.0
    remaining = (total - step) / speed if speed > 0 else 0.0
    return {
        "type": "progressGenerate",
        "task": "Generate",
        "percentage": str(int(100 * step / total)) if total else "0",
        "stepCurrent": str(step),
        "stepTotal": str(total),
        "speed": f"{speed:.2f}",
        "speedType": "it/s",
        "elapsedTime": f"{int(elapsed)}s",
        "remainingTime": f"{round(remaining)}s",
    }
