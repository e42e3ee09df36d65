"""Linear cross-entropy and log-probabilities against the dense torch composition."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.autograd import gradcheck

import losskit
import losskit.functional as LF
from losskit.losses.language._vocab_walk import auto_blocks

IGNORE = -100
# (rows, cols) blocks: automatic (one block here), vocabulary blocks not dividing V, token
# blocks not dividing N, both, one token per block, one vocabulary entry per block.
CHUNKS = (None, 7, (13, 23), (5, 7), (1, 23), (1000, 1))


def _inputs(tokens=37, dim=5, vocab=23, seed=0, shape=None):
    g = torch.Generator().manual_seed(seed)
    lead = shape or (tokens,)
    h = torch.randn(*lead, dim, dtype=torch.float64, generator=g)
    w = torch.randn(vocab, dim, dtype=torch.float64, generator=g)
    b = torch.randn(vocab, dtype=torch.float64, generator=g)
    y = torch.randint(0, vocab, lead, generator=g)
    y.view(-1)[::5] = IGNORE
    return h, w, b, y


def _dense(h, w, y, *, bias=None, label_smoothing=0.0, z_loss=0.0, softcap=None, shift=False,
           reduction="mean"):  # fmt: skip
    """The reference: materialised logits, torch's cross-entropy, the z-loss by hand."""
    if shift:
        h, y = h[:, :-1], y[:, 1:]
    z = F.linear(h, w, bias)
    if softcap is not None:
        z = softcap * torch.tanh(z / softcap)
    flat, target = z.reshape(-1, z.shape[-1]), y.reshape(-1)
    ce = F.cross_entropy(flat, target, ignore_index=IGNORE, label_smoothing=label_smoothing,
                         reduction="none")  # fmt: skip
    valid = target != IGNORE
    per_token = ce + z_loss * torch.where(valid, torch.logsumexp(flat, 1) ** 2, 0.0)
    if reduction == "none":
        return per_token.reshape(y.shape)
    if reduction == "sum":
        return per_token.sum()
    return per_token.sum() / valid.sum().clamp_min(1)


def _value_and_grads(fn, h, w, b, upstream):
    leaves = [x.detach().clone().requires_grad_() for x in (h, w, b)]
    out = fn(*leaves)
    (out * upstream).sum().backward()
    return [out.detach(), *(x.grad for x in leaves)]


OPTIONS = (
    {},
    {"label_smoothing": 0.1},
    {"z_loss": 1e-2},
    {"softcap": 3.0},
    {"label_smoothing": 0.2, "z_loss": 0.1, "softcap": 2.0},
)


@pytest.mark.parametrize("chunk", CHUNKS)
@pytest.mark.parametrize("reduction", ("mean", "sum", "none"))
@pytest.mark.parametrize("options", OPTIONS)
def test_matches_dense_value_and_gradients(chunk, reduction, options):
    h, w, b, y = _inputs()
    upstream = torch.randn(y.shape, dtype=torch.float64) if reduction == "none" else 1.7
    ours = _value_and_grads(
        lambda h, w, b: LF.linear_cross_entropy(
            h, w, y, bias=b, reduction=reduction, chunk_size=chunk, **options
        ),
        h, w, b, upstream,
    )  # fmt: skip
    ref = _value_and_grads(
        lambda h, w, b: _dense(h, w, y, bias=b, reduction=reduction, **options), h, w, b, upstream
    )
    for a, r in zip(ours, ref):
        torch.testing.assert_close(a, r, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("chunk", (None, (4, 6)))
@pytest.mark.parametrize("reduction", ("mean", "none"))
def test_shift_next_token_form(chunk, reduction):
    h, w, b, y = _inputs(shape=(3, 7), vocab=17)
    upstream = torch.randn(3, 6, dtype=torch.float64) if reduction == "none" else 1.0
    kw = {"reduction": reduction, "shift": True, "z_loss": 1e-3}
    ours = _value_and_grads(
        lambda h, w, b: LF.linear_cross_entropy(h, w, y, bias=b, chunk_size=chunk, **kw),
        h, w, b, upstream,
    )  # fmt: skip
    ref = _value_and_grads(lambda h, w, b: _dense(h, w, y, bias=b, **kw), h, w, b, upstream)
    if reduction == "none":
        assert ours[0].shape == (3, 6)
    for a, r in zip(ours, ref):
        torch.testing.assert_close(a, r, rtol=1e-9, atol=1e-10)
    assert ours[1][:, -1].abs().sum() == 0  # the last position predicts nothing


def test_without_bias_and_frozen_weight():
    h, w, _, y = _inputs()
    h.requires_grad_()
    out = LF.linear_cross_entropy(h, w, y, chunk_size=(8, 8))  # w does not require grad
    (gh,) = torch.autograd.grad(out, h)
    hh = h.detach().clone().requires_grad_()
    (ref,) = torch.autograd.grad(_dense(hh, w, y), hh)
    torch.testing.assert_close(gh, ref)
    wl = w.clone().requires_grad_()
    (gw,) = torch.autograd.grad(LF.linear_cross_entropy(h.detach(), wl, y), wl)
    wr = w.clone().requires_grad_()
    torch.testing.assert_close(gw, torch.autograd.grad(_dense(h.detach(), wr, y), wr)[0])


def test_retained_graph_keeps_the_stored_gradients():
    """Each backward of a kept graph scales the gradients stored by the forward pass afresh;
    the last one (graph not kept) may scale them in place."""
    h, w, b, y = _inputs()
    leaves = [x.clone().requires_grad_() for x in (h, w, b)]
    loss = LF.linear_cross_entropy(*leaves[:2], y, bias=leaves[2], chunk_size=(8, 8))
    first = torch.autograd.grad(loss, leaves, retain_graph=True)
    second = torch.autograd.grad(0.5 * loss, leaves, retain_graph=True)
    last = torch.autograd.grad(-3.0 * loss, leaves)
    ref = torch.autograd.grad(_dense(*leaves[:2], y, bias=leaves[2]), leaves)
    for ours, scale in ((first, 1.0), (second, 0.5), (last, -3.0)):
        for a, r in zip(ours, ref):
            torch.testing.assert_close(a, scale * r, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("reduction", ("mean", "sum", "none"))
def test_all_ignored_is_zero_and_connected(reduction):
    h, w, b, _ = _inputs()
    leaves = [x.requires_grad_() for x in (h, w, b)]
    y = torch.full((h.shape[0],), IGNORE)
    out = LF.linear_cross_entropy(h, w, y, bias=b, reduction=reduction, z_loss=0.1)
    assert out.requires_grad and torch.equal(out, torch.zeros_like(out))
    out.sum().backward()
    assert all(torch.equal(x.grad, torch.zeros_like(x)) for x in leaves)
    short = LF.linear_cross_entropy(h[None, :1], w, y[None, :1], shift=True)  # T = 1
    assert short.item() == 0.0 and short.requires_grad


@pytest.mark.parametrize("chunk", ((3, 4), None))
def test_gradcheck(chunk):
    h, w, b, y = _inputs(tokens=6, dim=3, vocab=9)
    for reduction in ("mean", "none"):

        def fn(h, w, b, reduction=reduction):
            return LF.linear_cross_entropy(
                h, w, y, bias=b, reduction=reduction, chunk_size=chunk, label_smoothing=0.1,
                z_loss=0.05, softcap=2.5,
            )  # fmt: skip

        assert gradcheck(fn, [x.clone().requires_grad_() for x in (h, w, b)])


@pytest.mark.parametrize("dtype", (torch.bfloat16, torch.float16))
@pytest.mark.parametrize("chunk", (None, (16, 40)))
def test_autocast_finite_and_close(dtype, chunk):
    h, w, b, y = _inputs(tokens=64, dim=16, vocab=300)
    h, w, b = (x.float().requires_grad_() for x in (h, w, b))
    with torch.autocast("cpu", dtype=dtype):
        ours = LF.linear_cross_entropy(h * 3, w, y, bias=b, chunk_size=chunk, z_loss=1e-4)
    assert ours.dtype == torch.float32 and torch.isfinite(ours)
    grads = torch.autograd.grad(ours, (h, w, b))
    # The reference: the same rounded GEMM inputs, everything after in float64.
    hd, wd, bd = (x.detach().to(dtype).double().requires_grad_() for x in (h * 3, w, b))
    ref = _dense(hd, wd, y, bias=bd, z_loss=1e-4)
    ref_grads = torch.autograd.grad(ref, (hd, wd, bd))
    torch.testing.assert_close(ours.double(), ref, rtol=2e-2, atol=2e-2)
    scale = (1.0 / 3.0, 1.0, 1.0)  # d/dh of (3h) vs d/d(3h)
    for g, r, s in zip(grads, ref_grads, scale):
        assert torch.isfinite(g).all()
        torch.testing.assert_close(g.double(), r * (1 / s if s != 1 else 1), rtol=5e-2, atol=5e-3)


def test_half_precision_inputs_keep_their_dtype():
    h, w, _, y = _inputs(tokens=32, dim=8, vocab=64)
    hb, wb = h.bfloat16().requires_grad_(), w.bfloat16().requires_grad_()
    out = LF.linear_cross_entropy(hb, wb, y)
    out.backward()
    assert out.dtype == torch.bfloat16 and hb.grad.dtype == torch.bfloat16
    torch.testing.assert_close(out.double(), _dense(hb.double(), wb.double(), y), rtol=2e-2,
                               atol=2e-2)  # fmt: skip


def test_auto_blocks_by_shape():
    # Large D: whole vocabulary rows; half-precision weights or tiny D: vocabulary blocks.
    assert auto_blocks(4096, 32768, 512, "cpu", True) == (256, 32768)
    rows, cols = auto_blocks(4096, 262144, 4096, "cuda", False)
    assert rows == 4096 and cols < 262144 and cols % 256 == 0
    assert auto_blocks(8, 100, 4, "cpu", True) == (8, 100)  # small: one block, dense
    rows, cols = auto_blocks(100_000, 1_000_000, 16, "cpu", True)  # D too small for rows
    assert rows * cols <= 1 << 25 and cols < 1_000_000


def test_linear_log_probs_and_sequence_log_probs():
    h, w, b, y = _inputs(shape=(3, 6), vocab=13)
    hl, wl = h.clone().requires_grad_(), w.clone().requires_grad_()
    ours = LF.linear_log_probs(hl, wl, y, bias=b, shift=True, chunk_size=(4, 5))
    ref_h, ref_w = h.clone().requires_grad_(), w.clone().requires_grad_()
    logp = F.log_softmax(F.linear(ref_h[:, :-1], ref_w, b), dim=-1)
    target = y[:, 1:]
    ref = torch.where(target != IGNORE, logp.gather(-1, target.clamp_min(0)[..., None])[..., 0], 0)
    torch.testing.assert_close(ours, ref)
    upstream = torch.randn_like(ref)
    g = torch.autograd.grad((ours * upstream).sum(), (hl, wl))
    g_ref = torch.autograd.grad((ref * upstream).sum(), (ref_h, ref_w))
    for a, r in zip(g, g_ref):
        torch.testing.assert_close(a, r)
    summed = LF.sequence_log_probs(h, w, y, bias=b, shift=True)
    torch.testing.assert_close(summed, ref.sum(1))
    mean = LF.sequence_log_probs(h, w, y, bias=b, shift=True, average=True)
    torch.testing.assert_close(mean, ref.sum(1) / (target != IGNORE).sum(1))


def test_module_matches_function_and_builds_by_name():
    h, w, b, y = _inputs()
    module = losskit.build_loss("linear_cross_entropy", label_smoothing=0.1, reduction="sum")
    assert isinstance(module, losskit.LinearCrossEntropyLoss)
    torch.testing.assert_close(
        module(h, w, y, b), _dense(h, w, y, bias=b, label_smoothing=0.1, reduction="sum")
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"weight": torch.randn(5)}, ValueError, r"`weight` to be 2-D \(V, D\)"),
        ({"hidden": torch.randn(4, 3)}, ValueError, "last dimension D=5"),
        ({"targets": torch.zeros(3, dtype=torch.long)}, ValueError, "`targets` of shape"),
        ({"targets": torch.full((4,), 50)}, ValueError, "`targets` in"),
        ({"targets": torch.zeros(4)}, TypeError, "integer class indices"),
        ({"bias": torch.randn(3)}, ValueError, r"`bias` of shape \(10,\)"),
        ({"label_smoothing": 1.5}, ValueError, r"`label_smoothing` in \[0, 1\]"),
        ({"z_loss": -1.0}, ValueError, "`z_loss`"),
        ({"softcap": 0.0}, ValueError, r"`softcap` in \(0, inf\)"),
        ({"shift": True}, ValueError, r"`hidden` to be 3-D \(B, T, D\)"),
        ({"chunk_size": 0}, ValueError, "`chunk_size` to be an integer >= 1"),
        ({"chunk_size": [2, 3]}, TypeError, "`chunk_size` an integer or a pair"),
        ({"reduction": "avg"}, ValueError, "`reduction`"),
    ],
)
def test_errors(kwargs, error, match):
    args = {"hidden": torch.randn(4, 5), "weight": torch.randn(10, 5),
            "targets": torch.zeros(4, dtype=torch.long)}  # fmt: skip
    for key in ("hidden", "weight", "targets"):
        if key in kwargs:
            args[key] = kwargs.pop(key)
    with pytest.raises(error, match=match):
        LF.linear_cross_entropy(args["hidden"], args["weight"], args["targets"], **kwargs)
