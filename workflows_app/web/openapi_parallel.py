"""The OpenAPI parts of parallel branches and sub-workflows (docs/parallel.md): the status
fields `currentSteps`, `currentTasks`, `parentInstanceId`, and per step and history entry
`branch` and `childInstanceId` (merged into /api/openapi.json by openapi.py)."""

_UUID = {"type": "string", "format": "uuid"}
_BRANCH = {
    "type": "string",
    "description": "the branch of a parallel step the step belongs to (absent for the "
    "workflow's own steps)",
}

STATUS_PROPERTIES = {
    "currentSteps": {
        "type": "array",
        "items": {"type": "string"},
        "description": "Every open step where work happens (one per open branch), in "
        "definition order; `currentStep` is the first. A parallel step waiting for its branches "
        "is not listed (it reads `current` in `steps`).",
    },
    "currentTasks": {
        "type": "array",
        "items": {"$ref": "#/components/schemas/Task"},
        "description": "The open run of each of `currentSteps`; `currentTask` is the first.",
    },
    "parentInstanceId": {
        **_UUID,
        "description": "For a sub-workflow's instance: the instance whose workflow step "
        "started it (absent otherwise).",
    },
}

STEP_PROPERTIES = {
    "branch": _BRANCH,
    "childInstanceId": {
        "type": ["string", "null"],
        "format": "uuid",
        "description": "A workflow step's child instance (of its latest run), or null before "
        "it started; absent for other steps.",
    },
}

HISTORY_PROPERTIES = {"branch": _BRANCH}
