"""The five toy functions of the KAN paper's scaling figure (Liu et al. 2024, §3.1, Fig. 3.1)."""
from __future__ import annotations

import numpy as np
from scipy import special

from harness.tasks.base import Task, box
from harness.tasks import register

PI = np.pi

register(Task("toy_bessel", 1, 1, lambda x: special.j0(20 * x[:, 0]), box(1),
              "f(x) = J0(20x)"))
register(Task("toy_exp_sin", 2, 1, lambda x: np.exp(np.sin(PI * x[:, 0]) + x[:, 1] ** 2), box(2),
              "f(x, y) = exp(sin(pi x) + y^2)"))
register(Task("toy_xy", 2, 1, lambda x: x[:, 0] * x[:, 1], box(2), "f(x, y) = x y"))
register(Task("toy_exp_sin100", 100, 1,
              lambda x: np.exp(np.mean(np.sin(PI * x / 2) ** 2, axis=1)), box(100),
              "f(x_1..x_100) = exp((1/100) sum sin^2(pi x_i / 2))"))
register(Task("toy_exp_sin4", 4, 1,
              lambda x: np.exp(0.5 * (np.sin(PI * (x[:, 0] ** 2 + x[:, 1] ** 2))
                                      + np.sin(PI * (x[:, 2] ** 2 + x[:, 3] ** 2)))), box(4),
              "f(x1..x4) = exp(0.5 (sin(pi(x1^2 + x2^2)) + sin(pi(x3^2 + x4^2))))"))
