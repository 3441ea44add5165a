"""REINFORCE over the 6 edges x 5 ops, as NB201's baseline runs it.

A categorical policy per edge (logits initialised at 1e-3 * N(0, 1)), Adam on the logits,
reward baseline = bias-corrected exponential moving average of the rewards (momentum 0.9),
loss ``-log p(arch) * (reward - baseline)``. The answer (``answer``) is the best cell seen
(``best``, NB201's later code: ``max(trace)``) or the policy's argmax cell at the end
(``argmax``, NB201's first version: ``policy.genotype()``). The learning rate defaults to 0.001
(NB201's script).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import HarnessError
from .base import BudgetExhausted, Option, register

N_EDGES, N_OPS = 6, 5


@register("reinforce", reference="Williams, 1992; NB201's REINFORCE baseline (Dong & Yang, ICLR 2020)",
          options={"learning_rate": Option(0.001, float, low=0, low_open=True),
                   "ema_momentum": Option(0.9, float, low=0, high=1, high_open=True),
                   "answer": Option("best", str, choices=("best", "argmax"))})
def reinforce(space, evaluator, tracker, rng, learning_rate: float = 0.001, ema_momentum: float = 0.9,
              answer: str = "best") -> int:
    """Policy gradient on per-edge op logits; returns the best cell seen (or the policy's argmax)."""
    if answer not in ("best", "argmax"):
        raise HarnessError(f"reinforce answer={answer!r} is not best or argmax", "use answer=best or answer=argmax")
    logits = 1e-3 * rng.standard_normal((N_EDGES, N_OPS))
    adam = _Adam(logits.shape, learning_rate)
    num = den = 0.0
    try:
        while True:
            probs = _softmax(logits)
            ops = np.array([rng.choice(N_OPS, p=p) for p in probs])
            reward = tracker.evaluate(space.index(tuple(int(o) for o in ops)), rng)
            if not math.isfinite(reward):
                continue  # a failed evaluation teaches the policy nothing
            num = ema_momentum * num + (1 - ema_momentum) * reward
            den = ema_momentum * den + (1 - ema_momentum)
            advantage = reward - num / den
            # d(-log p(a) * adv)/d logits = -(onehot(a) - p) * adv, per edge
            grad = -(np.eye(N_OPS)[ops] - probs) * advantage
            logits = adam.step(logits, grad)
    except BudgetExhausted:
        pass
    if answer == "argmax":
        return space.index(tuple(int(o) for o in logits.argmax(axis=1)))
    return tracker.best()


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


class _Adam:
    """Adam (Kingma & Ba) with PyTorch's defaults: betas (0.9, 0.999), eps 1e-8."""

    def __init__(self, shape, lr: float, betas=(0.9, 0.999), eps: float = 1e-8):
        self.lr, self.b1, self.b2, self.eps = lr, betas[0], betas[1], eps
        self.m, self.v, self.t = np.zeros(shape), np.zeros(shape), 0

    def step(self, params: np.ndarray, grad: np.ndarray) -> np.ndarray:
        self.t += 1
        self.m = self.b1 * self.m + (1 - self.b1) * grad
        self.v = self.b2 * self.v + (1 - self.b2) * grad * grad
        m_hat = self.m / (1 - self.b1 ** self.t)
        v_hat = self.v / (1 - self.b2 ** self.t)
        return params - self.lr * m_hat / (np.sqrt(v_hat) + self.eps)
