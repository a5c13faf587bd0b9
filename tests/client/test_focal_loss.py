"""``Client.focal_loss`` and ``AsyncClient.focal_loss`` against a real ``python -m service``: the
service's own numbers (its core, called here with the same arrays) in both forms, every output, its
problems as ``ProblemError``; and the transport: always JSON (/v1/focal-loss has no /v2 model), with
an explicit "binary" refused before anything is sent."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields
from typing import Any

import httpx
import numpy as np
import pytest

from service.api.routes.focal_loss import FocalLossResponse
from service.core.focal import focal_loss
from service.core.vocabulary import FOCAL_OUTPUTS
from tests.live import LiveServer
from xent_client import AsyncClient, Client, ErrorItem, FocalLossResult, ProblemError, XentError
from xent_client._transport import ENDPOINTS, JSON_MAX_NUMBERS, prepare

EVERY = tuple(FOCAL_OUTPUTS)
RNG = np.random.default_rng(7)
LOGITS = RNG.normal(scale=2.0, size=(5, 4))
#: Sigmoid: soft labels in [0, 1] of the logits' shape; softmax: class indices, one ignored (-100).
SIGMOID_TARGET = RNG.uniform(size=(5, 4)).round(3)
SOFTMAX_TARGET = np.array([0, 3, -100, 2, 1])
FORMS: dict[str, dict[str, Any]] = {
    "sigmoid": {"logits": LOGITS, "target": SIGMOID_TARGET, "alpha": 0.25},
    "sigmoid-no-alpha": {"logits": LOGITS, "target": SIGMOID_TARGET},
    "softmax": {"logits": LOGITS, "target": SOFTMAX_TARGET, "alpha": np.array([1.0, 2.0, 0.5, 1.5])},
    "softmax-ignore-3": {"logits": LOGITS, "target": SOFTMAX_TARGET.clip(0), "ignore_index": 3},
}


@pytest.fixture(scope="module")
def client(live_server: LiveServer) -> Iterator[Client]:
    with Client(live_server.url, retries=0) as client:
        yield client


def expected(arguments: dict[str, Any], **options: Any) -> Any:
    """What the service's core computes for the same request."""
    alpha = arguments.get("alpha")
    return focal_loss(
        np.asarray(arguments["logits"], dtype=np.float64),
        np.asarray(arguments["target"]),
        alpha=None if alpha is None else np.asarray(alpha, dtype=np.float64),
        ignore_index=arguments.get("ignore_index"),
        **options,
    )


def assert_is_the_core(result: FocalLossResult, want: Any, dtype: str) -> None:
    assert isinstance(result, FocalLossResult)
    assert result.count == want.count and isinstance(result.count, int)
    if want.loss is None:
        assert result.loss is None
    else:
        assert isinstance(result.loss, float) and result.loss == float(want.loss)
    for name in EVERY:
        got, wanted = getattr(result, name), getattr(want, name)
        if wanted is None:
            assert got is None, name
            continue
        assert isinstance(got, np.ndarray) and got.dtype == np.dtype(dtype), f"{name}: {got!r}"
        np.testing.assert_array_equal(got, np.asarray(wanted, dtype=dtype), err_msg=name, strict=True)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("form", sorted(FORMS))
def test_both_forms_give_exactly_the_services_numbers(
    client: Client, form: str, reduction: Any, dtype: Any
) -> None:
    arguments = FORMS[form]
    result = client.focal_loss(**arguments, gamma=1.5, reduction=reduction, dtype=dtype, outputs=EVERY)
    want = expected(arguments, gamma=1.5, reduction=reduction, dtype=dtype, outputs=EVERY)
    assert_is_the_core(result, want, dtype)
    assert (result.loss is None) == (reduction == "none")


def test_options_left_none_take_the_services_defaults(client: Client) -> None:
    """gamma 2, no alpha, ignore_index -100, mean, float64, outputs ["losses"]."""
    result = client.focal_loss(logits=LOGITS, target=SOFTMAX_TARGET)
    assert_is_the_core(result, expected({"logits": LOGITS, "target": SOFTMAX_TARGET}), "float64")
    assert result.losses is not None and result.probabilities is None and result.grad is None
    assert result.count == 4  # the -100 target is not counted


def test_the_articles_example_keeps_the_mistake_and_drops_the_confident_sample(client: Client) -> None:
    result = client.focal_loss(logits=[[-1, 0.5, 2], [-1, 0.5, 3]], target=[1, 2], gamma=0.0)
    assert result.losses is not None
    np.testing.assert_allclose(result.losses, [1.7413112966571571, 0.09567432941438228], rtol=1e-14)
    focused = client.focal_loss(logits=[[-1, 0.5, 2], [-1, 0.5, 3]], target=[1, 2])
    assert focused.losses is not None
    assert 1.0 < focused.losses[0] < 1.7413 and focused.losses[1] < 0.001


def test_the_result_type_has_exactly_the_responses_fields() -> None:
    assert [field.name for field in fields(FocalLossResult)] == list(FocalLossResponse.model_fields)
    assert set(ENDPOINTS["focal_loss"].scalars + EVERY) == set(FocalLossResponse.model_fields)


@pytest.mark.parametrize("output", EVERY)
@pytest.mark.parametrize("form", ["sigmoid", "softmax"])
def test_every_output_round_trips_into_the_result(client: Client, form: str, output: str) -> None:
    arguments = FORMS[form]
    result = client.focal_loss(**arguments, outputs=[output])
    want = expected(arguments, outputs=[output])
    assert_is_the_core(result, want, "float64")
    for name in EVERY:
        assert (getattr(result, name) is None) == (name != output), name
    nothing = client.focal_loss(**arguments, outputs=[])
    assert nothing.loss == result.loss and nothing.count == result.count
    assert all(getattr(nothing, name) is None for name in EVERY)


def test_nothing_counted_gives_a_null_loss(client: Client) -> None:
    result = client.focal_loss(logits=[[1.0, 2.0]], target=[-100], outputs=["grad"])
    assert (result.loss, result.count, result.losses) == (None, 0, None)
    assert result.grad is not None
    np.testing.assert_array_equal(result.grad, [[0.0, 0.0]], strict=False)


@pytest.mark.parametrize(
    ("options", "loc", "fragment"),
    [
        ({"gamma": -1.0}, ("gamma",), "gamma = -1.0 must be a finite number >= 0"),
        ({"alpha": [1, -2, 1]}, ("alpha", 1), "alpha[1] = -2.0 is negative"),
        ({"target": [1, 3]}, ("target", 1), "target[1] = 3 is out of range for 3 classes"),
        ({"outputs": ["softmax"]}, ("outputs", 0), "Input should be 'losses', 'probabilities' or 'grad'"),
        ({"target": [[1, 0, 1], [0, 1, 0]], "alpha": 2}, ("alpha",), "alpha of a sigmoid focal loss"),
    ],
)
def test_a_problem_answer_is_a_problem_error_naming_the_field(
    client: Client, options: dict[str, Any], loc: tuple[Any, ...], fragment: str
) -> None:
    arguments: dict[str, Any] = {"logits": [[-1, 0.5, 2], [-1, 0.5, 3]], "target": [1, 2], **options}
    with pytest.raises(ProblemError) as raised:
        client.focal_loss(**arguments)
    error = raised.value
    assert (error.status, error.type) == (422, "/problems/invalid-input")
    assert error.errors and error.errors[0].loc == loc and fragment in error.errors[0].msg
    assert isinstance(error.errors[0], ErrorItem) and error.request_id


class Counting:
    """An httpx transport that counts what reaches it (and answers nothing useful)."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(500, json={"title": "not expected", "status": 500})


def test_binary_is_refused_before_any_request() -> None:
    seen = Counting()
    mock = httpx.MockTransport(seen)
    argument = Client("http://xent.test", http=httpx.Client(base_url="http://xent.test", transport=mock))
    default = Client(
        "http://xent.test", transport="binary", http=httpx.Client(base_url="http://xent.test", transport=mock)
    )
    refused = "/v1/focal-loss is served as JSON only"
    with argument, default:
        with pytest.raises(XentError, match=refused):
            argument.focal_loss(logits=LOGITS, target=SOFTMAX_TARGET, transport="binary")
        with pytest.raises(XentError, match=refused):
            default.focal_loss(logits=LOGITS, target=SOFTMAX_TARGET)  # the client's default
        with pytest.raises(XentError, match=f"NaN and Infinity cannot be written as JSON; {refused}"):
            argument.focal_loss(logits=[[1.0, float("nan")]], target=[0])  # auto cannot fall back to binary
    assert seen.requests == []


@pytest.mark.anyio
async def test_binary_is_refused_before_any_request_async() -> None:
    seen = Counting()
    http = httpx.AsyncClient(base_url="http://xent.test", transport=httpx.MockTransport(seen))
    async with AsyncClient("http://xent.test", transport="binary", http=http) as aclient:
        with pytest.raises(XentError, match="served as JSON only"):
            await aclient.focal_loss(logits=LOGITS, target=SOFTMAX_TARGET)
        with pytest.raises(XentError, match="served as JSON only"):
            await aclient.focal_loss(logits=LOGITS, target=SOFTMAX_TARGET, transport="binary")
    assert seen.requests == []


def test_a_binary_client_still_sends_focal_loss_as_json_when_told(live_server: LiveServer) -> None:
    with Client(live_server.url, transport="binary") as client:
        result = client.focal_loss(logits=LOGITS, target=SOFTMAX_TARGET, transport="json")
    assert_is_the_core(result, expected({"logits": LOGITS, "target": SOFTMAX_TARGET}), "float64")


def test_a_large_input_goes_as_json_under_auto(live_server: LiveServer) -> None:
    logits = np.random.default_rng(3).normal(size=(600, 5))
    target = np.arange(600) % 5
    assert logits.size + target.size > JSON_MAX_NUMBERS
    prepared = prepare(ENDPOINTS["focal_loss"], {"logits": logits, "target": target}, {}, None, "auto")
    assert (prepared.binary, prepared.path) == (False, "/v1/focal-loss")
    sent: list[tuple[str, str]] = []

    def record(request: httpx.Request) -> None:
        sent.append((request.url.path, request.headers["content-type"]))

    http = httpx.Client(base_url=live_server.url, event_hooks={"request": [record]})
    with Client(live_server.url, http=http) as client:
        result = client.focal_loss(logits=logits, target=target, outputs=EVERY)
    assert sent == [("/v1/focal-loss", "application/json")]
    assert_is_the_core(result, expected({"logits": logits, "target": target}, outputs=EVERY), "float64")


@pytest.mark.anyio
@pytest.mark.parametrize("form", sorted(FORMS))
async def test_the_async_client_gives_the_same_answers(
    live_server: LiveServer, client: Client, form: str
) -> None:
    arguments = FORMS[form]
    async with AsyncClient(live_server.url, retries=0) as aclient:
        result = await aclient.focal_loss(**arguments, reduction="sum", dtype="float32", outputs=EVERY)
    assert_is_the_core(
        result, expected(arguments, reduction="sum", dtype="float32", outputs=EVERY), "float32"
    )
    same = client.focal_loss(**arguments, reduction="sum", dtype="float32", outputs=EVERY)
    assert result.loss == same.loss and result.count == same.count
    for name in EVERY:
        np.testing.assert_array_equal(getattr(result, name), getattr(same, name), strict=True)


@pytest.mark.anyio
async def test_the_async_client_maps_problems_too(live_server: LiveServer) -> None:
    async with AsyncClient(live_server.url, retries=0) as aclient:
        with pytest.raises(ProblemError) as raised:
            await aclient.focal_loss(logits=[[-1, 0.5, 2]], target=[1], gamma=-1.0)
    assert raised.value.status == 422 and raised.value.errors[0].loc == ("gamma",)
