"""Host syncs: with value checks off a loss call, and the trainer's objective, read nothing
back from the device.

On the CPU a sync cannot be observed directly, so :class:`SyncCounter` counts what would be
one on a GPU: every read of a tensor's value on the host (``.item()``, ``bool()``, ``int()``,
``float()`` all dispatch ``_local_scalar_dense``; ``.tolist()`` and ``.numpy()`` are wrapped)
and every op whose output shape depends on the values (``nonzero``, ``unique``, boolean-mask
indexing...). Where CUDA exists, ``torch.cuda.set_sync_debug_mode("error")`` checks the same.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import io
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import losskit
from losskit.train import loop
from losskit.train.config import TrainConfig, load_config
from losskit.train.objective import Objective
from losskit.train.run_folder import RunFolder
from losskit.train.runtime import Runtime
from losskit.train.tracking import Callback, Progress, standard_callbacks
from tests.test_contract import EXAMPLES

SHAPE_FROM_VALUES = {
    "nonzero",
    "masked_select",
    "unique",
    "_unique",
    "_unique2",
    "unique_dim",
    "unique_consecutive",
    "repeat_interleave",
    "bincount",
    "equal",
    "allclose",
}


class SyncCounter(TorchDispatchMode):
    """Counts, by op name, the calls that would make a host sync on a GPU."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: collections.Counter[str] = collections.Counter()
        self.active = False
        # tensors that stay on the host in a GPU run too (their reads are no device sync)
        self.on_host: Callable[[torch.Tensor], bool] = lambda tensor: False

    def __enter__(self) -> SyncCounter:
        self.active = True
        return super().__enter__()

    def __exit__(self, *exc: Any) -> None:
        self.active = False
        super().__exit__(*exc)

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        name = func._schema.name.split("::")[1]
        if name == "_local_scalar_dense" and self.on_host(args[0]):
            pass
        elif name == "_local_scalar_dense" or name in SHAPE_FROM_VALUES:
            self.ops[name] += 1
        elif name == "index" and any(
            isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in args[1] if i is not None
        ):
            self.ops["index with a boolean mask"] += 1
        return func(*args, **(kwargs or {}))


@pytest.fixture
def syncs(monkeypatch: pytest.MonkeyPatch) -> SyncCounter:
    """A counter that also sees ``.tolist()`` and ``.numpy()`` (they skip the dispatcher)."""
    counter = SyncCounter()
    for method in ("tolist", "numpy"):
        original = getattr(torch.Tensor, method)

        def counted(self: torch.Tensor, *a: Any, _m: str = method, _f: Any = original) -> Any:
            if counter.active:
                counter.ops[_m] += 1
            return _f(self, *a)

        monkeypatch.setattr(torch.Tensor, method, counted)
    return counter


def _call(name: str, device: str = "cpu") -> tuple[torch.nn.Module, tuple[Any, ...]]:
    """The contract example of ``name``, built on ``device`` (graphs between its inputs too)."""
    torch.manual_seed(0)
    with torch.device(device):
        kwargs, args = EXAMPLES[name]()
        return losskit.build_loss(name, **kwargs), args


def _forward_backward(module: torch.nn.Module, args: tuple[Any, ...]) -> None:
    out = module(*args)
    (out[0] if isinstance(out, tuple) else out).backward()


def test_switch_and_context_manager():
    assert losskit.checks_enabled()
    with losskit.checks(False):
        assert not losskit.checks_enabled()
        with losskit.checks(True):
            assert losskit.checks_enabled()
        assert not losskit.checks_enabled()
    assert losskit.checks_enabled()
    losskit.set_checks(False)
    try:
        assert not losskit.checks_enabled()
    finally:
        losskit.set_checks(True)
    with pytest.raises(TypeError, match="set_checks: expected `enabled` to be a bool, got int"):
        losskit.set_checks(0)  # type: ignore[arg-type]
    with (
        pytest.raises(TypeError, match="checks: expected `enabled` to be a bool, got str"),
        losskit.checks("no"),  # type: ignore[arg-type]
    ):
        pass


def test_value_checks_catch_bad_labels_only_when_on():
    logits, labels = torch.randn(4, 3), torch.tensor([0, 1, 2, 3])
    with pytest.raises(ValueError, match=r"cross_entropy: expected `targets` in \[0, 2\]"):
        losskit.functional.cross_entropy(logits, labels)
    with losskit.checks(False):  # nothing reads the labels; the result is not checked either
        losskit.functional.focal(logits, torch.tensor([0, 1, 2, 2]))
    with pytest.raises(ValueError, match="expected `targets` in"):
        losskit.functional.cross_entropy(logits, labels)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_loss_call_makes_no_sync_with_checks_off(name, syncs):
    module, args = _call(name)
    with losskit.checks(False), syncs:
        _forward_backward(module, args)
    assert not syncs.ops, f"{name}: {dict(syncs.ops)}"


def _labelled(classes: int = 7) -> tuple[torch.Tensor, ...]:
    """Embeddings, labels (some classes absent) and proxies, float64."""
    x = torch.randn(9, 4, dtype=torch.float64, requires_grad=True)
    proxies = torch.randn(classes, 4, dtype=torch.float64, requires_grad=True)
    return x, torch.tensor([0, 0, 3, 3, 3, 5, 1, 1, 6]), proxies


def _segmentation(ignore: int, channels: int = 3) -> tuple[torch.Tensor, ...]:
    """Logits (``(N, H, W)`` for one channel) and a target with ``ignore`` in two rows."""
    target = torch.randint(0, max(channels, 2), (2, 4, 5))
    target[0, :2] = ignore
    logits = torch.randn(2, channels, 4, 5, dtype=torch.float64, requires_grad=True)
    return logits.squeeze(1) if channels == 1 else logits, target


def _head() -> tuple[torch.Tensor, ...]:
    hidden = torch.randn(6, 3, requires_grad=True)
    weight = torch.randn(11, 3, requires_grad=True)
    return hidden, weight, torch.tensor([0, 4, -100, 10, 2, 2])


def _levels() -> tuple[torch.Tensor, ...]:
    return torch.randn(4, 2, requires_grad=True), torch.randn(4), torch.tensor([0.2, 0.8])


F = losskit.functional
# Paths the contract examples do not take: (function, its inputs, its options).
OPTION_PATHS: dict[str, tuple[Any, Any, dict[str, Any]]] = {
    "proxy_anchor chunked": (F.proxy_anchor, _labelled, {"chunk_size": 2}),
    "focal_proxy_anchor chunked": (F.focal_proxy_anchor, _labelled, {"chunk_size": 3}),
    "arcface per sample": (F.arcface, _labelled, {"reduction": "none", "chunk_size": 2}),
    "lovasz_softmax ignore_index": (
        F.lovasz_softmax, lambda: _segmentation(255), {"ignore_index": 255}
    ),
    "lovasz_softmax ignored class": (
        F.lovasz_softmax, lambda: _segmentation(0), {"ignore_index": 0, "per_image": True}
    ),
    "lovasz_hinge ignore_index": (
        F.lovasz_hinge, lambda: _segmentation(-1, channels=1), {"ignore_index": -1}
    ),
    "quantile tensor levels": (F.quantile, _levels, {}),
    "linear_cross_entropy vocabulary blocks": (
        F.linear_cross_entropy, _head, {"chunk_size": (4, 3), "reduction": "none"}
    ),
}  # fmt: skip


def _option_path(path: str, device: str = "cpu") -> tuple[Any, tuple[torch.Tensor, ...]]:
    """The function of ``path`` with its options, and its inputs built on ``device``."""
    fn, inputs, options = OPTION_PATHS[path]
    torch.manual_seed(0)
    with torch.device(device):
        return functools.partial(fn, **options), inputs()


@pytest.mark.parametrize("path", sorted(OPTION_PATHS))
def test_option_paths_make_no_sync_with_checks_off(path, syncs):
    fn, args = _option_path(path)
    with losskit.checks(False), syncs:
        fn(*args).sum().backward()
    assert not syncs.ops, f"{path}: {dict(syncs.ops)}"


def test_each_value_check_makes_one_sync(syncs):
    logits = torch.randn(6, 4, requires_grad=True)
    labels = torch.tensor([0, 1, 2, 3, -100, 1])
    with syncs:
        losskit.functional.cross_entropy(logits, labels).backward()
    # the labels' range and the probabilities warning: one host read each
    assert syncs.ops == {"_local_scalar_dense": 2}


def _objective(loss_type: str) -> tuple[Objective, tuple[torch.Tensor, ...]]:
    torch.manual_seed(0)
    config = TrainConfig(loss_type=loss_type, proxy_type="FocalStyleProxyAnchorLoss")
    objective = Objective(config, num_classes=5, embedding_dim=8)
    features = torch.randn(12, 8, requires_grad=True)
    logits = torch.randn(12, 5, requires_grad=True)
    return objective, (features, logits, torch.arange(12) % 5)


@pytest.mark.parametrize("loss_type", ["CE", "proxy", "combined", "focal"])
def test_trainer_objective_makes_no_sync_with_checks_off(loss_type, syncs):
    objective, args = _objective(loss_type)
    with losskit.checks(False), syncs:
        objective(*args).total.backward()
    assert not syncs.ops, dict(syncs.ops)


CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@contextlib.contextmanager
def _cuda_sync_debug(mode: str) -> Iterator[None]:
    """Value checks off; a synchronizing CUDA call raises (``"error"``) or warns (``"warn"``)."""
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode(mode)
    try:
        with losskit.checks(False):
            yield
    finally:
        torch.cuda.set_sync_debug_mode("default")


@CUDA
@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_cuda_loss_call_makes_no_sync_with_checks_off(name):
    module, args = _call(name, "cuda")
    with _cuda_sync_debug("error"):
        _forward_backward(module, args)


@CUDA
@pytest.mark.parametrize("loss_type", ["CE", "proxy", "combined", "focal"])
def test_cuda_trainer_objective_makes_no_sync_with_checks_off(loss_type):
    objective, args = _objective(loss_type)
    objective = objective.cuda()
    args = tuple(a.detach().cuda().requires_grad_(a.requires_grad) for a in args)
    with _cuda_sync_debug("error"):
        objective(*args).total.backward()


@CUDA
@pytest.mark.parametrize("path", sorted(OPTION_PATHS))
def test_cuda_option_paths_make_no_sync_with_checks_off(path):
    fn, args = _option_path(path, "cuda")
    with _cuda_sync_debug("error"):
        fn(*args).sum().backward()


# --- the trainer's steps -----------------------------------------------------------------------


class _Drawn:
    """A training loader's batches of one epoch, drawn beforehand: the loader works on the host
    (its index lists are no device reads), so only the steps themselves are counted."""

    def __init__(self, loader: Any, epoch: int) -> None:
        loader.sampler.set_epoch(epoch)
        self.sampler, self.batches = loader.sampler, list(loader)
        self.sampler.set_epoch = lambda epoch: None

    def __iter__(self) -> Any:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class _Logged(Callback):
    """Keeps what ``on_log`` hands over (and, when ``read``, each step's values as read in
    ``on_step_end``)."""

    def __init__(self, read: bool = False) -> None:
        self.read = read
        self.logged: list[tuple[int, dict[str, float]]] = []
        self.each: list[tuple[int, dict[str, float]]] = []

    def on_step_end(self, run: Any, parts: Any, values: Any) -> None:
        if self.read:
            self.each.append((run.global_step, dict(values)))

    def on_log(self, run: Any, steps: list[tuple[int, dict[str, float]]]) -> None:
        self.logged += steps


def _epoch_run(tmp_path: Path, device: str = "cpu", **overrides: Any) -> tuple[Any, list[Any]]:
    """A run ready for its first epoch (started: TensorBoard open), with the standard
    callbacks, a progress bar and a :class:`_Logged`."""
    settings = {"epochs": 1, "hidden_dim": 16, "embedding_dim": 8, "device": device,
                "output_dir": str(tmp_path)}  # fmt: skip
    config = load_config(overrides={**settings, **overrides})
    run = loop.setup(config, RunFolder(tmp_path), None, Runtime.from_env(device, amp=config.amp))
    run.train_loader = _Drawn(run.train_loader, 1)
    cbs = [*standard_callbacks(run, io.StringIO()), Progress(), _Logged()]
    loop.start(run, cbs, resumed=False)
    return run, cbs


def _log_steps(steps: int, every: int) -> int:
    """How many steps of an epoch of ``steps`` read the losses: each ``every``-th and the last."""
    return steps // every + (steps % every != 0)


@pytest.mark.parametrize(
    "overrides",
    [
        {"loss_type": "combined", "log_every": 4},
        {"loss_type": "CE", "grad_accum_steps": 3, "log_every": 2},
        {"loss_type": "proxy", "proxy_type": "FocalStyleProxyAnchorLoss", "log_every": 6,
         "amp": True},
        {"proxy_type": "MultiProxyAnchorLoss", "optimizer": "sgd", "grad_clip": None},
    ],
)  # fmt: skip
def test_trainer_steps_read_the_device_once_per_log_every_steps(tmp_path, syncs, overrides):
    run, cbs = _epoch_run(tmp_path, **overrides)
    counters = lambda: [state.get("step") for state in run.optimizer.state.values()]  # noqa: E731
    syncs.on_host = lambda tensor: any(tensor is step for step in counters())  # AdamW's counts
    with syncs:
        loop.train_epoch(run, cbs)
    n, every = run.steps_per_epoch, run.config.log_every
    assert n > every  # several windows
    assert syncs.ops == {"tolist": _log_steps(n, every)}, dict(syncs.ops)
    assert [step for step, _ in cbs[-1].logged] == list(range(1, n + 1))  # each once, in order


def test_log_every_changes_no_logged_value(tmp_path):
    """The losses of every step and the epoch's sums, read every step, every 7 steps, or by a
    callback at each step."""
    logged = []
    for every in (1, 7):
        run, cbs = _epoch_run(tmp_path / str(every), loss_type="combined", log_every=every)
        cbs[-1].read = True
        loop.train_epoch(run, cbs)
        assert cbs[-1].each == cbs[-1].logged  # values read at each step: the same floats
        logged.append((cbs[-1].logged, run.epoch_sums))
    assert logged[0] == logged[1]


@CUDA
@pytest.mark.parametrize("loss_type", ["combined", "CE"])
def test_cuda_trainer_steps_sync_once_per_log_every_steps(tmp_path, loss_type):
    run, cbs = _epoch_run(tmp_path, "cuda", loss_type=loss_type, log_every=4, amp=True)
    with warnings.catch_warnings(record=True) as caught, _cuda_sync_debug("warn"):
        warnings.simplefilter("always")
        loop.train_epoch(run, cbs)
    syncs = [w for w in caught if "synchronizing" in str(w.message)]
    assert len(syncs) <= _log_steps(run.steps_per_epoch, 4), [str(w.message) for w in syncs]
