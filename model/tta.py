"""Test-time adaptation: entropy of codebook queries minimised over the GA parameters only.

One call adapts a whole batch in one forward and one backward: each sample carries its own GA
parameters (a session's state, or the trained ones), passed to the network as (B, ...) tensors with
`torch.func.functional_call`; each sample's loss depends only on its own parameters, so the gradient
of the summed loss gives every session its own gradient. Adam runs per sample (a session's moments
and step count are its own). Safety (MODEL.md): a step whose loss or gradient is not finite is
dropped, and a session whose recent entropy drifts 20% above its first adapted frames is reset.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import torch
from torch import Tensor
from torch.func import functional_call

from model.config import TTAConfig
from model.ganet import GANet
from model.layers.ga import GAOperation


class Outcome(StrEnum):
    """What adaptation did for one frame."""

    NONE = "none"  # not asked to adapt
    ADAPTED = "adapted"
    DROPPED = "dropped"  # non-finite loss or gradient: the step was discarded
    RESET = "reset"  # the safety rule put the session back to the trained parameters


def ga_parameter_names(model: GANet) -> list[str]:
    """Names of every GA parameter (`W`, `b` of every GA operation): all that TTA may change."""
    return [
        f"{mod_name}.{p_name}"
        for mod_name, mod in model.named_modules()
        if isinstance(mod, GAOperation)
        for p_name, _ in mod.named_parameters(recurse=False)
    ]


@dataclass
class GAState:
    """A session's adaptation: GA parameters, Adam moments, step count and entropy history."""

    params: dict[str, Tensor]
    exp_avg: dict[str, Tensor]
    exp_avg_sq: dict[str, Tensor]
    step: int = 0
    first_entropies: list[float] = field(default_factory=list)
    recent_entropies: list[float] = field(default_factory=list)
    resets: int = 0

    @staticmethod
    def fresh(params: dict[str, Tensor], resets: int = 0) -> GAState:
        return GAState(
            params={k: v.detach().clone() for k, v in params.items()},
            exp_avg={k: torch.zeros_like(v) for k, v in params.items()},
            exp_avg_sq={k: torch.zeros_like(v) for k, v in params.items()},
            resets=resets,
        )


@dataclass
class TTAResult:
    hsi: Tensor  # (B, C, H, W), computed with the parameters each sample had before this step
    entropy: Tensor | None  # (B,) query entropy, when any sample adapted
    states: list[GAState | None]
    outcomes: list[Outcome]
    input_residual: Tensor | None = None  # (B, H, W), see GANetOutput


class TTAAdapter:
    """Runs batches through a frozen GANet with per-sample GA parameters and adapts them."""

    def __init__(self, model: GANet, cfg: TTAConfig | None = None) -> None:
        self.model = model.eval().requires_grad_(False)
        self.cfg = cfg or TTAConfig()
        self.names = ga_parameter_names(model)
        named = dict(model.named_parameters())
        self.trained = {n: named[n].detach().clone() for n in self.names}

    def initial_state(self) -> GAState:
        return GAState.fresh(self.trained)

    def _batched_params(self, states: Sequence[GAState | None], grad: bool) -> dict[str, Tensor]:
        return {
            n: torch.stack(
                [(s.params[n] if s is not None else self.trained[n]) for s in states]
            ).requires_grad_(grad)
            for n in self.names
        }

    def run(self, rgb_bchw: Tensor, states: Sequence[GAState | None], adapt: Sequence[bool]) -> TTAResult:
        """One forward (and one backward when any sample adapts) over a batch of sessions' frames."""
        if len(states) != rgb_bchw.shape[0] or len(adapt) != rgb_bchw.shape[0]:
            raise ValueError("need one state and one adapt flag per sample")
        if any(a and s is None for a, s in zip(adapt, states, strict=True)):
            raise ValueError("a sample that adapts needs a state")
        if not any(s is not None for s in states):
            with torch.no_grad():
                out = self.model(rgb_bchw)
            return TTAResult(out.hsi, None, list(states), [Outcome.NONE] * len(states), out.input_residual)
        adapting = any(adapt)
        params = self._batched_params(states, adapting)
        with torch.enable_grad() if adapting else torch.no_grad():
            out = functional_call(self.model, params, (rgb_bchw,), {"with_entropy": adapting})
            grads: tuple[Tensor, ...] = ()
            if out.entropy is not None:
                mask = torch.tensor(adapt, dtype=out.entropy.dtype, device=out.entropy.device)
                loss = (out.entropy * mask).nan_to_num(nan=0.0, posinf=0.0, neginf=0.0).sum()
                grads = torch.autograd.grad(loss, [params[n] for n in self.names], allow_unused=True)
        new_states: list[GAState | None] = []
        outcomes: list[Outcome] = []
        for b, (state, wants) in enumerate(zip(states, adapt, strict=True)):
            if not wants or state is None or out.entropy is None:
                new_states.append(state)
                outcomes.append(Outcome.NONE)
                continue
            g = {
                n: (gr[b] if gr is not None else torch.zeros_like(self.trained[n]))
                for n, gr in zip(self.names, grads, strict=True)
            }
            new_state, outcome = self._step(state, g, float(out.entropy[b].detach()))
            new_states.append(new_state)
            outcomes.append(outcome)
        entropy = out.entropy.detach() if out.entropy is not None else None
        residual = out.input_residual.detach() if out.input_residual is not None else None
        return TTAResult(out.hsi.detach(), entropy, new_states, outcomes, residual)

    def _step(self, state: GAState, grads: dict[str, Tensor], entropy: float) -> tuple[GAState, Outcome]:
        """Per-sample Adam on the GA parameters, then the safety rule."""
        if not math.isfinite(entropy) or not all(bool(torch.isfinite(g).all()) for g in grads.values()):
            return state, Outcome.DROPPED
        c = self.cfg
        new = copy.deepcopy(state)
        new.step += 1
        bc1, bc2 = 1 - c.beta1**new.step, 1 - c.beta2**new.step
        for n, g in grads.items():
            new.exp_avg[n].mul_(c.beta1).add_(g, alpha=1 - c.beta1)
            new.exp_avg_sq[n].mul_(c.beta2).addcmul_(g, g, value=1 - c.beta2)
            denom = (new.exp_avg_sq[n] / bc2).sqrt_().add_(c.eps)
            new.params[n].addcdiv_(new.exp_avg[n], denom, value=-c.lr / bc1)
        history = new.first_entropies if len(new.first_entropies) < c.window else new.recent_entropies
        history.append(entropy)
        del new.recent_entropies[: -c.window]
        if len(new.recent_entropies) == c.window and (
            sum(new.recent_entropies) / c.window > c.reset_ratio * sum(new.first_entropies) / c.window
        ):
            return GAState.fresh(self.trained, resets=state.resets + 1), Outcome.RESET
        return new, Outcome.ADAPTED

    def adapt_one_shot(
        self, rgb_bchw: Tensor, steps: int, states: Sequence[GAState] | None = None
    ) -> TTAResult:
        """`steps` adaptation steps on the same frames, then the output with the adapted parameters."""
        current: list[GAState | None] = (
            list(states) if states is not None else [self.initial_state() for _ in range(rgb_bchw.shape[0])]
        )
        outcomes = [Outcome.NONE] * rgb_bchw.shape[0]
        for _ in range(steps):
            res = self.run(rgb_bchw, current, [True] * len(current))
            current, outcomes = res.states, res.outcomes
        final = self.run(rgb_bchw, current, [False] * len(current))
        return TTAResult(final.hsi, None, current, outcomes, final.input_residual)
