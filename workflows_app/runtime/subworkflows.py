"""A workflow step's dispatch: start its child instance, then wait for it.

The step's run is opened like an automated step's (claimed by the caller, or queued for a
worker), so a lost process is recovered by the timers as for any step. Its dispatch, in one
transaction under the tree's lock: the child (the newest version of the child workflow, the
parent's payload, its own case number, linked both ways) with its first runs, and the step's
run waiting for it. The child's end finishes the step (branches.finish_parent_step).
"""

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from .. import engine
from ..models import Event, RunState, WorkflowInstance, new_case_number
from ..queries import catalog
from . import branches, webhooks
from .guards import Claimed, add_event, guarded
from .opening import open_positions
from .steps import fail_step

CASE_NUMBER_DRAWS = 3


def start_child(claimed: Claimed) -> list[Claimed]:
    """Start the child of a claimed workflow step's run; its python steps come back claimed."""
    run, parent = claimed.run, claimed.instance
    step = catalog.spec_of(parent).step(run.step_id)
    now = timezone.now()
    with transaction.atomic():
        branches.lock(parent)
        definition = catalog.latest_definition(step.workflow)
        problems = catalog.payload_problems(definition, parent.payload) if definition else []
        if definition is None or problems:
            why = "; ".join(problems) or "it is not published"
            error = f"the sub-workflow {step.workflow} cannot start: {why}"
            fail_step(run, parent, error, now=now, expect=RunState.RUNNING)
            return []
        guarded(run, RunState.RUNNING, state=RunState.WAITING, wake_at=None)
        child = _create_child(parent, run, definition, now=now)
        add_event(parent, run, Event.Type.CHILD_STARTED, child=child.case_number)
        opens = engine.begin(catalog.spec_of(child)).opens
        webhooks.record_change(child, now=now, current_steps=[p.step for p in opens])
        inline = settings.HMS_INLINE_PYTHON_STEPS
        return open_positions(child, opens, now=now, inline=inline)


def _create_child(parent: WorkflowInstance, run, definition, *, now) -> WorkflowInstance:
    first = catalog.spec_of(definition).first_step
    for attempt in range(CASE_NUMBER_DRAWS):
        try:
            with transaction.atomic():  # a savepoint: a case number drawn twice is drawn again
                child = WorkflowInstance.objects.create(
                    definition=definition,
                    case_number=new_case_number(definition.case_prefix, now),
                    payload=dict(parent.payload),
                    current_step=first,
                    parent_run=run,
                    root_id=parent.root_id or parent.pk,
                    started_by=f"case:{parent.case_number}",
                )
            break
        except IntegrityError:
            if attempt == CASE_NUMBER_DRAWS - 1:
                raise
    add_event(child, None, Event.Type.STARTED, parent=parent.case_number)
    return child
