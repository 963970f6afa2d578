"""Property-based tests (Hypothesis) of the definition validator and the engine's routing.

Whatever a file holds, the validator answers with a spec or with InvalidDefinition listing
readable problems; every generated valid workflow parses; the engine only ever moves to a real
step or a terminal status, loops only along a back edge the author wrote, and backs off
monotonically. HYPOTHESIS_EXAMPLES=2000 runs them bigger (see docs/security.md).
"""

import json
import os
import string

import hypothesis.strategies as st
import yaml
from django.test import SimpleTestCase
from hypothesis import HealthCheck, given, settings

from workflows_app import engine
from workflows_app.definitions import (
    STEP_FIELDS,
    TERMINALS,
    WORKFLOW_FIELDS,
    InvalidDefinition,
    RetryPolicy,
    load_text,
    parse_definition,
)
from workflows_app.definitions.durations import Duration
from workflows_app.engine import TERMINAL_STATUS, Move
from workflows_app.models import Status

EXAMPLES = int(os.environ.get("HYPOTHESIS_EXAMPLES", "100"))
PROPERTY_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

RESULTS = ("ok", "approved", "rejected", "timeout", "sent", "skipped")
# Conditions that compile; the last ones fail at run time for payloads without `score`.
CONDITIONS = (
    "true",
    "false",
    "result == 'approved'",
    "has(payload.flag) && payload.flag == true",
    "payload.score >= 5",
    "context.size() > 0",
)

# --- Arbitrary input ------------------------------------------------------------------------

# Any character text can hold, control characters included: PyYAML refuses some (C0/C1
# controls, DEL, U+FFFE) before parsing, and load_text must turn that into a problem too.
yaml_readable = st.characters(codec="utf-8", exclude_categories=["Cs"])
scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
readable_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(yaml_readable, max_size=20)
)
# Keys the validator knows appear often, so that generated documents reach its deeper checks.
keys = st.sampled_from([*WORKFLOW_FIELDS, *STEP_FIELDS, "if", "goto", "max", "backoff"]) | st.text(
    max_size=8
)
json_like = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(keys, children, max_size=6),
    max_leaves=40,
)
readable_json_like = st.recursive(
    readable_scalars,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text(yaml_readable, max_size=8) | keys, children, max_size=6)
    ),
    max_leaves=40,
)
# Mappings whose keys are not text, as a YAML file can hold them.
yaml_like = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            scalars.filter(lambda k: k is None or not isinstance(k, float)), children, max_size=4
        )
    ),
    max_leaves=20,
)


# --- Valid workflows ------------------------------------------------------------------------


def _slugs(tail: str, max_size: int):
    """A letter, then up to max_size of `tail` (from_regex is much slower to generate)."""
    head = st.sampled_from(string.ascii_lowercase)
    return st.builds(str.__add__, head, st.text(alphabet=tail, max_size=max_size))


step_ids = _slugs(string.ascii_lowercase + string.digits + "_-", 8).filter(
    lambda text: text not in TERMINALS
)
workflow_ids = _slugs(string.ascii_lowercase + string.digits + "-", 12)


@st.composite
def workflows(draw) -> dict:
    """A valid workflow document: linear or branching, with random `on`, `next` and terminals."""
    ids = draw(st.lists(step_ids, min_size=1, max_size=7, unique=True))
    targets = st.sampled_from([*ids, *sorted(TERMINALS)])
    steps = [draw(_step(step_id, targets)) for step_id in ids]
    return {"id": draw(workflow_ids), "steps": steps}


@st.composite
def _step(draw, step_id: str, targets) -> dict:
    step = {"id": step_id, "service": draw(st.sampled_from(["okSvc", "approvalSvc", "a.b-c_d"]))}
    if draw(st.booleans()):
        step["on"] = draw(st.dictionaries(st.sampled_from(RESULTS), targets, max_size=3))
    match draw(st.sampled_from(["none", "plain", "branches"])):
        case "plain":
            step["next"] = draw(targets)
        case "branches":
            branch = st.fixed_dictionaries({"if": st.sampled_from(CONDITIONS), "goto": targets})
            step["next"] = draw(st.lists(branch, min_size=1, max_size=3))
    if draw(st.booleans()):
        step["timeout"] = draw(st.sampled_from(["90s", "48h", "PT2H", "2 working days"]))
        step["onTimeout"] = draw(st.sampled_from(["escalate", "fail", "skip", "retry"]))
    if draw(st.booleans()):
        step["retry"] = {
            "max": draw(st.integers(0, 100)),
            "backoff": draw(st.sampled_from(["1s", "10s", "5m"])),
        }
    if draw(st.booleans()):
        step["title"] = draw(st.text(max_size=30))
    return step


payloads = st.fixed_dictionaries({}, optional={"flag": st.booleans(), "score": st.integers(0, 10)})


def index_of(spec, step_id: str) -> int:
    return spec.step_ids.index(step_id)


def back_edges(spec) -> set[tuple[str, str]]:
    """Explicit targets that point at the same or an earlier step: the only way to loop."""
    return {
        (step.id, target)
        for step in spec.steps
        for target in step.targets
        if target not in TERMINALS and index_of(spec, target) <= index_of(spec, step.id)
    }


# --- Validator ------------------------------------------------------------------------------


class ValidatorPropertyTests(SimpleTestCase):
    def assert_refused_readably(self, parse) -> None:
        try:
            parse()
        except InvalidDefinition as refused:
            assert refused.problems, "a refusal lists at least one problem"
            for problem in refused.problems:
                assert problem.message.strip(), f"empty message in {problem!r}"
                assert str(problem)

    @PROPERTY_SETTINGS
    @given(data=json_like)
    def test_any_json_like_value_parses_or_is_refused_with_problems(self, data):
        self.assert_refused_readably(lambda: parse_definition(data, source="fuzz.json"))

    @PROPERTY_SETTINGS
    @given(document=workflows(), path_choice=st.randoms(use_true_random=False), junk=json_like)
    def test_a_valid_workflow_with_one_field_replaced_by_junk_parses_or_is_refused(
        self, document, path_choice, junk
    ):
        step = path_choice.choice(document["steps"])
        field = path_choice.choice([*STEP_FIELDS, "extra"])
        step[field] = junk
        self.assert_refused_readably(lambda: parse_definition(document, source="fuzz.json"))

    @PROPERTY_SETTINGS
    @given(data=yaml_like)
    def test_yaml_like_values_with_odd_keys_parse_or_are_refused(self, data):
        self.assert_refused_readably(lambda: parse_definition({"id": "x", "steps": [data]}))

    @PROPERTY_SETTINGS
    @given(
        text=st.text(yaml_readable, max_size=300),
        fmt=st.sampled_from([None, "json", "yaml", "toml"]),
    )
    def test_any_text_loads_or_is_refused_with_problems(self, text, fmt):
        self.assert_refused_readably(lambda: load_text(text, source="fuzz.txt", format=fmt))

    @PROPERTY_SETTINGS
    @given(data=readable_json_like, fmt=st.sampled_from(["json", "yaml"]))
    def test_any_serialised_document_loads_or_is_refused_with_problems(self, data, fmt):
        text = json.dumps(data) if fmt == "json" else yaml.safe_dump(data)
        self.assert_refused_readably(lambda: load_text(text, source=f"fuzz.{fmt}"))

    @PROPERTY_SETTINGS
    @given(
        text=st.text(alphabet=string.printable.strip("\x0b\x0c"), max_size=200),
        prefix=st.sampled_from(["id: x\nsteps:\n", "- ", "{", "[", "---\n", "&a [*a]\n"]),
    )
    def test_yaml_shaped_text_loads_or_is_refused_with_problems(self, text, prefix):
        self.assert_refused_readably(lambda: load_text(prefix + text, source="fuzz.yaml"))

    def test_text_with_characters_yaml_refuses_is_refused_not_crashed(self):
        valid_json = '{"id": "x", "steps": [{"id": "a", "service": "s", "title": "caf\x7f"}]}'
        (spec,) = load_text(valid_json, source="odd.json").workflows
        assert spec.steps[0].title == "caf\x7f"
        self.assert_refused_readably(lambda: load_text("id: x\x08", source="odd.yaml"))

    @PROPERTY_SETTINGS
    @given(document=workflows())
    def test_every_generated_valid_workflow_parses_with_its_steps_in_order(self, document):
        spec = parse_definition(document, source="gen.json")
        assert spec.step_ids == tuple(step["id"] for step in document["steps"])

    @PROPERTY_SETTINGS
    @given(document=workflows(), fmt=st.sampled_from(["json", "yaml"]))
    def test_every_generated_valid_workflow_loads_the_same_from_json_and_yaml(self, document, fmt):
        text = json.dumps(document) if fmt == "json" else yaml.safe_dump(document)
        (spec,) = load_text(text, source=f"gen.{fmt}").workflows
        assert spec == parse_definition(document)


# --- Engine ---------------------------------------------------------------------------------


class AdvancePropertyTests(SimpleTestCase):
    def assert_real_move(self, spec, move: Move) -> None:
        if move.status == Status.RUNNING:
            assert move.step in spec.step_ids, move
        else:
            assert move.status in TERMINAL_STATUS.values() and move.step is None, move

    @PROPERTY_SETTINGS
    @given(
        document=workflows(),
        data=st.data(),
        result=st.sampled_from(RESULTS) | st.text(max_size=10),
        payload=payloads,
    )
    def test_advance_goes_to_a_real_step_or_a_terminal_status(
        self, document, data, result, payload
    ):
        spec = parse_definition(document)
        step_id = data.draw(st.sampled_from(spec.step_ids))
        move = engine.advance(spec, step_id, result, payload=payload, context={})
        self.assert_real_move(spec, move)
        if move.status == Status.RUNNING:
            step = spec.step(step_id)
            assert move.step in (*step.targets, spec.following(step_id)), (step_id, move)

    @PROPERTY_SETTINGS
    @given(document=workflows(), data=st.data(), payload=payloads)
    def test_a_walk_ends_or_loops_only_along_a_back_edge_the_author_wrote(
        self, document, data, payload
    ):
        spec = parse_definition(document)
        loops = back_edges(spec)
        move, context, taken = engine.start(spec), {}, []
        for _ in range(4 * len(spec.steps) + 4):
            if move.status != Status.RUNNING:
                break
            self.assert_real_move(spec, move)
            result = data.draw(st.sampled_from(RESULTS))
            context[move.step] = {"result": result}
            following = engine.advance(spec, move.step, result, payload=payload, context=context)
            if following.step and index_of(spec, following.step) <= index_of(spec, move.step):
                assert (move.step, following.step) in loops, "went back without a back edge"
                taken.append((move.step, following.step))
            move = following
        self.assert_real_move(spec, move)
        if move.status == Status.RUNNING:
            assert taken, "an endless walk must have gone back along a back edge"
        if not loops:
            assert move.status != Status.RUNNING, "a workflow without back edges always ends"


# --- Retry backoff --------------------------------------------------------------------------


policies = st.builds(
    RetryPolicy,
    max=st.integers(0, 100),
    backoff=st.integers(1, 7 * 86400).map(lambda seconds: Duration(seconds)),
)


class RetryDelayPropertyTests(SimpleTestCase):
    @PROPERTY_SETTINGS
    @given(policy=policies, jitter=st.floats(0, 1, exclude_max=True))
    def test_delay_never_shrinks_as_attempts_grow_and_is_never_negative(self, policy, jitter):
        delays = [
            engine.retry_delay(policy, attempts, jitter=lambda: jitter)
            for attempts in range(1, policy.max + 1)
        ]
        assert all(delay is not None and delay >= 0 for delay in delays)
        assert delays == sorted(delays)

    @PROPERTY_SETTINGS
    @given(
        policy=st.none() | policies,
        attempts=st.integers(0, 120),
        jitter=st.floats(0, 1, exclude_max=True),
        retry_after=st.none() | st.floats(0, 10 * 86400),
    )
    def test_delay_is_none_exactly_when_the_retries_are_spent(
        self, policy, attempts, jitter, retry_after
    ):
        delay = engine.retry_delay(policy, attempts, retry_after=retry_after, jitter=lambda: jitter)
        spent = attempts > (policy or engine.DEFAULT_RETRY).max
        assert (delay is None) == spent
        if delay is not None:
            assert 0 <= delay <= engine.MAX_BACKOFF_SECONDS
            if retry_after is not None:
                assert delay >= min(retry_after, engine.MAX_BACKOFF_SECONDS)
