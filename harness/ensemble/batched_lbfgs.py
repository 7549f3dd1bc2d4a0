"""L-BFGS for M independent models at once, each on its own trajectory; a solo run is a stack of one.

Each member runs L-BFGS on its own flattened parameters: the two-loop recursion (Nocedal & Wright
2006, Alg. 7.4, with the scaling gamma_k = s'y / y'y of eq. (7.20)), per-member history, initial
step and strong-Wolfe line search (`line_search.strong_wolfe`). Vector work is batched over the
model axis (rows of (M, P) tensors); the scalar control flow of each member's line search is a
small Python state machine that asks for evaluations at step lengths t.

The iteration is the one shared by torch.optim.LBFGS.step and pykan 0.2.8's `kan.LBFGS.step` (a
copy of torch's with one more argument): at most max_iter iterations and max_eval evaluations per
step, the first iteration of the optimizer's life starting at t = min(1, 1/|g|_1) * lr and the
others at t = lr, and the stopping tests max |g| <= tolerance_grad, g'd > -tolerance_change,
max |t d| <= tolerance_change and |f - f_prev| < tolerance_change. Each iteration evaluates once
per line-search trial (once in all without a line search), after the step's first evaluation. A
pair (s, y) = (t d, g_new - g_old) that passes the curvature test enters the history, dropping the
oldest when history_size are held, and sets the initial scaling s'y / y'y; one that fails leaves
both as they were. `rule` picks where the two differ:

- rule="pykan" (pykan 0.2.8 `MultKAN.fit`): a curvature pair (s, y) enters the history when
  s'y > 1e-32 (`tolerance_ys`), and each line search may evaluate up to 25 times (`max_ls`'s
  default, whatever the step's evaluations so far: a step can run up to max_eval - 1 + 25).
- rule="torch" (torch.optim.LBFGS): pairs need s'y > 1e-10 (hard-coded in torch), and a line
  search gets only the step's remaining budget, max_eval - evaluations so far.

pykan's `fit` builds its optimizer as LBFGS(lr=lr (1), history_size=10, line_search_fn=
"strong_wolfe", tolerance_grad=tolerance_change=tolerance_ys=1e-32) with the defaults max_iter=20,
max_eval=25: `configs/optim/lbfgs.yaml` is that. Late in a smooth fit s'y falls below 1e-10 long
before 1e-32: torch's rule then drops every new pair, its directions go stale and its line searches
end early, and the fit ends higher (issue 9: median G=20 test RMSE 2.35e-4 with torch's rule,
8.55e-5 with pykan's). Two things of pykan's `fit` are deliberately not copied: its `step` calls
torch.manual_seed(0) every time (a reset of the global RNG; our batches have their own generator),
and it permutes the full batch every step (the mean loss changes only in round-off).

All members are evaluated together (one batched forward+backward per round); a member counts an
evaluation only if its own algorithm asked for it, and a member that has finished its step (or is
frozen) holds its parameters while the others continue.
"""
from __future__ import annotations

from typing import Callable, List, Optional, Sequence, Union

import torch

from harness.ensemble.line_search import G0, LOW, NEW, PREV, Search, strong_wolfe


def row_dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(M, P), (M, P) -> (M,): one dot product per member (the same reduction whatever M)."""
    return (a * b).sum(-1)


Closure = Callable[[], torch.Tensor]


# Where torch.optim.LBFGS and pykan 0.2.8's kan.LBFGS (as `MultKAN.fit` builds it) differ:
# the curvature threshold on s'y and the evaluations a line search may use (None: the step's rest).
RULES = {"pykan": dict(tolerance_ys=1e-32, max_ls=25), "torch": dict(tolerance_ys=1e-10, max_ls=None)}


class BatchedLBFGS:
    """L-BFGS over M members: params are tensors with a leading model axis (M, ...), or, with
    n_models=1, one model's parameters as they are (a stack of one).

    Arguments and defaults are torch.optim.LBFGS's, plus `rule` ("pykan" or "torch", see the
    module docstring); `lr` may be one value per member.
    `step(closure)`: closure() zeroes the gradients, evaluates all members at the current
    parameters, back-propagates the sum of their losses (member m's gradient is then its own) and
    returns the losses (M,) (or a scalar for a stack of one). Returns (loss of each member at the
    start of the step, evaluations each member's algorithm asked for during the step).
    """

    def __init__(self, params: Sequence[torch.Tensor], lr: Union[float, Sequence[float]] = 1.0,
                 max_iter: int = 20, max_eval: Optional[int] = None, tolerance_grad: float = 1e-7,
                 tolerance_change: float = 1e-9, history_size: int = 100,
                 line_search_fn: Optional[str] = None, rule: str = "pykan",
                 n_models: Optional[int] = None):
        if line_search_fn not in (None, "strong_wolfe"):
            raise ValueError(f"line_search_fn={line_search_fn!r}: only 'strong_wolfe' or None")
        if rule not in RULES:
            raise ValueError(f"rule={rule!r}: choose one of {sorted(RULES)}")
        self.params = list(params)
        self.n_models = self.params[0].shape[0] if n_models is None else n_models
        lrs = [float(lr)] * self.n_models if isinstance(lr, (int, float)) else [float(v) for v in lr]
        assert len(lrs) == self.n_models, (len(lrs), self.n_models)
        self.lr = lrs
        self.max_iter, self.history_size = max_iter, history_size
        self.max_eval = max_eval if max_eval is not None else max_iter * 5 // 4  # torch's default
        self.tolerance_grad, self.tolerance_change = tolerance_grad, tolerance_change
        self.rule = rule
        self.tolerance_ys, self.max_ls = RULES[rule]["tolerance_ys"], RULES[rule]["max_ls"]
        self.line_search = line_search_fn == "strong_wolfe"
        self.frozen = [False] * self.n_models
        self.func_evals = [0] * self.n_models
        self.n_iter = [0] * self.n_models  # iterations over the optimizer's life (torch: state n_iter)
        self.t = [0.0] * self.n_models
        self.prev_loss = [0.0] * self.n_models
        self.n_hist = [0] * self.n_models
        self.d = None  # (M, P) directions; the rest is allocated with it at the first step

    # ----- checkpoints: everything the next step reads ------------------------------------------
    _STATE = ("lr", "frozen", "func_evals", "n_iter", "t", "prev_loss", "n_hist")
    _TENSORS = ("d", "prev_g", "s_hist", "y_hist", "rho", "h_diag")

    def state_dict(self, member: Optional[int] = None) -> dict:
        """The whole state, or member `member`'s slice of it (the state of a stack of one: what
        a member's own checkpoint carries, so it resumes alone)."""
        rows = slice(None) if member is None else slice(member, member + 1)
        state = {name: list(getattr(self, name))[rows] for name in self._STATE}
        if self.d is not None:
            state.update({name: getattr(self, name)[rows].clone() for name in self._TENSORS})
        return state

    def load_state_dict(self, state: dict) -> None:
        for name in self._STATE:
            setattr(self, name, list(state[name]))
        if "d" in state:
            like = self.params[0]
            for name in self._TENSORS:
                setattr(self, name, state[name].to(device=like.device, dtype=like.dtype))
            self.g_prev, self.g_low = torch.zeros_like(self.d), torch.zeros_like(self.d)

    def freeze(self, member: int) -> None:
        """Stop a member for good (failed or diverged): it holds its parameters, counts nothing."""
        self.frozen[member] = True

    # ----- flat views of the members' parameters ------------------------------------------------
    def _flat_params(self) -> torch.Tensor:
        return torch.cat([p.detach().reshape(self.n_models, -1) for p in self.params], 1)

    def _flat_grad(self) -> torch.Tensor:
        return torch.cat([torch.zeros_like(p).reshape(self.n_models, -1) if p.grad is None
                          else p.grad.reshape(self.n_models, -1) for p in self.params], 1)

    def _set_params(self, flat: torch.Tensor) -> None:
        offset = 0
        for p in self.params:
            size = p.numel() // self.n_models
            p.copy_(flat[:, offset:offset + size].view_as(p))
            offset += size

    def _evaluate(self, closure: Closure, flat: torch.Tensor):
        self._set_params(flat)
        with torch.enable_grad():
            losses = closure()
        return losses.detach().reshape(-1).tolist(), self._flat_grad()

    def _allocate(self, g: torch.Tensor) -> None:
        n_models, size = g.shape
        self.d = torch.zeros_like(g)
        self.prev_g = torch.zeros_like(g)  # gradient at the start of the current iteration (G0)
        self.g_prev = torch.zeros_like(g)  # line search: gradient at the previous trial (PREV)
        self.g_low = torch.zeros_like(g)  # line search: gradient at the bracket's low point (LOW)
        self.s_hist = g.new_zeros(n_models, self.history_size, size)  # newest last; empty = 0
        self.y_hist = g.new_zeros(n_models, self.history_size, size)
        self.rho = g.new_zeros(n_models, self.history_size)
        self.h_diag = g.new_ones(n_models)

    def _mask(self, members) -> torch.Tensor:
        mask = torch.zeros(self.n_models, dtype=torch.bool, device=self.d.device)
        mask[list(members)] = True
        return mask

    def _column(self, values: Sequence[float]) -> torch.Tensor:
        return torch.tensor(values, dtype=self.d.dtype, device=self.d.device)[:, None]

    # ----- one step: up to max_iter iterations per member ---------------------------------------
    @torch.no_grad()
    def step(self, closure: Closure):
        x = self._flat_params()  # (M, P) accepted parameters
        losses, self.g = self._evaluate(closure, x)
        if self.d is None:
            self._allocate(self.g)
        members = range(self.n_models)
        self.evals = [0 if self.frozen[m] else 1 for m in members]
        self.loss = list(losses)
        optimal = (self.g.abs().amax(1) <= self.tolerance_grad).tolist()
        self.iters = [0] * self.n_models  # iterations in this step
        self.searches: List[Optional[Search]] = [None] * self.n_models
        self.pending = [False] * self.n_models  # asked for an evaluation
        self.trial_t = [0.0] * self.n_models  # step length of that evaluation (line search)
        starting = [m for m in members if not self.frozen[m] and not optimal[m]]
        while True:
            if starting:
                x = self._begin_iterations(starting, x)
            asking = [m for m in members if self.pending[m]]
            if not asking:
                break
            searching = self._mask(m for m in asking if self.searches[m] is not None)
            trial = torch.where(searching[:, None],
                                torch.addcmul(x, self.d, self._column(self.trial_t)), x)
            f_new, g_new = self._evaluate(closure, trial)
            gtd_new = row_dot(g_new, self.d).tolist()
            finished, store_prev, store_low = {}, [], []
            for m in asking:
                self.pending[m] = False
                self.evals[m] += 1
                if self.searches[m] is None:  # no line search: the re-evaluation after a step
                    finished[m] = (None, f_new[m], NEW)
                    continue
                try:
                    self.trial_t[m], store = self.searches[m].send((f_new[m], gtd_new[m]))
                    self.pending[m] = True
                    (store_prev if store == PREV else store_low if store == LOW else []).append(m)
                except StopIteration as stop:
                    finished[m] = stop.value
                    self.searches[m] = None
            if store_prev:
                self.g_prev = torch.where(self._mask(store_prev)[:, None], g_new, self.g_prev)
            if store_low:
                self.g_low = torch.where(self._mask(store_low)[:, None], g_new, self.g_low)
            x, starting = self._end_iterations(finished, x, g_new)
        self._set_params(x)
        for m in members:
            self.func_evals[m] += self.evals[m]
        return losses, list(self.evals)

    def _begin_iterations(self, members: List[int], x: torch.Tensor) -> torch.Tensor:
        """New direction, initial step and line search for members starting an iteration."""
        chosen = self._mask(members)
        first = [m for m in members if self.n_iter[m] == 0]
        later = [m for m in members if self.n_iter[m] > 0]
        for m in members:
            self.iters[m] += 1
            self.n_iter[m] += 1
        d = self.d
        if later:
            self._update_history(later)
            d = torch.where(self._mask(later)[:, None], self._two_loop(later), d)
        if first:
            d = torch.where(self._mask(first)[:, None], self.g.neg(), d)
        self.d = d
        self.prev_g = torch.where(chosen[:, None], self.g, self.prev_g)
        first_t = (1.0 / self.g.abs().sum(1)).tolist() if first else None
        gtd = row_dot(self.g, self.d).tolist()
        d_norm = self.d.abs().amax(1).tolist()
        moved = []
        for m in members:
            self.prev_loss[m] = self.loss[m]
            self.t[m] = min(1.0, first_t[m]) * self.lr[m] if self.n_iter[m] == 1 else self.lr[m]
            if gtd[m] > -self.tolerance_change:  # not a descent direction (to round-off)
                continue
            if self.line_search:
                # both searches keep their own tolerance_change (1e-9) for the bracket width
                max_ls = self.max_ls if self.max_ls is not None else self.max_eval - self.evals[m]
                self.searches[m] = strong_wolfe(self.t[m], self.loss[m], gtd[m], d_norm[m],
                                                max_ls=max_ls)
                self.trial_t[m], _ = next(self.searches[m])
                self.pending[m] = True
            else:
                moved.append(m)
                self.pending[m] = self.iters[m] != self.max_iter  # re-evaluate unless last
        if moved:
            step = torch.addcmul(x, self.d, self._column(self.t))
            x = torch.where(self._mask(moved)[:, None], step, x)
        return x

    def _end_iterations(self, finished, x: torch.Tensor, g_new: torch.Tensor):
        """Accept the line search results, run the termination tests; -> (x, members to go on)."""
        if not finished:
            return x, []
        searched = {m: value for m, value in finished.items() if value[0] is not None}
        if searched:
            for m, (t, _, _) in searched.items():
                self.t[m] = t
            step = torch.addcmul(x, self.d, self._column(self.t))
            x = torch.where(self._mask(searched)[:, None], step, x)
        g = self.g
        for where, source in ((NEW, g_new), (PREV, self.g_prev), (LOW, self.g_low), (G0, self.prev_g)):
            rows = [m for m, value in finished.items() if value[2] == where]
            if rows:
                g = torch.where(self._mask(rows)[:, None], source, g)
        self.g = g
        optimal = (g.abs().amax(1) <= self.tolerance_grad).tolist()
        step_size = self.d.abs().amax(1).tolist()
        going_on = []
        for m, (_, f, _) in finished.items():
            self.loss[m] = f
            stop = (self.iters[m] == self.max_iter or self.evals[m] >= self.max_eval or optimal[m]
                    or abs(self.t[m]) * step_size[m] <= self.tolerance_change  # max |t d|
                    or abs(f - self.prev_loss[m]) < self.tolerance_change)
            if not stop:
                going_on.append(m)
        return x, going_on

    def _update_history(self, members: List[int]) -> None:
        """Append (s, y) = (t d, g - g_prev) for members whose curvature s'y > tolerance_ys."""
        y = self.g - self.prev_g
        s = self.d * self._column(self.t)
        ys = row_dot(y, s)
        accept = self._mask(members) & (ys > self.tolerance_ys)
        if not bool(accept.any()):
            return
        keep = accept[:, None, None]
        self.s_hist = torch.where(keep, torch.cat([self.s_hist[:, 1:], s[:, None]], 1), self.s_hist)
        self.y_hist = torch.where(keep, torch.cat([self.y_hist[:, 1:], y[:, None]], 1), self.y_hist)
        self.rho = torch.where(accept[:, None], torch.cat([self.rho[:, 1:], (1.0 / ys)[:, None]], 1),
                               self.rho)
        self.h_diag = torch.where(accept, ys / row_dot(y, y), self.h_diag)
        for m in accept.nonzero().flatten().tolist():
            self.n_hist[m] = min(self.n_hist[m] + 1, self.history_size)

    def _two_loop(self, members: List[int]) -> torch.Tensor:
        """-H g by the two-loop recursion over each member's history (N&W Alg. 7.4). Slots a
        member has not filled are zero and leave its vectors unchanged."""
        depth = max(self.n_hist[m] for m in members)
        newest = self.history_size - 1
        slots = range(newest, newest - depth, -1)
        q = self.g.neg()
        alphas = {}
        for j in slots:
            alphas[j] = row_dot(self.s_hist[:, j], q) * self.rho[:, j]
            q = torch.addcmul(q, self.y_hist[:, j], alphas[j].neg()[:, None])
        r = q * self.h_diag[:, None]
        for j in reversed(slots):
            beta = row_dot(self.y_hist[:, j], r) * self.rho[:, j]
            r = torch.addcmul(r, self.s_hist[:, j], (alphas[j] - beta)[:, None])
        return r


class SoloLBFGS(BatchedLBFGS):
    """The same L-BFGS on one model's parameters (a stack of one) with torch.optim's interface:
    `zero_grad()`, and `step(closure)` -> the loss at the start of the step, closure() returning
    a scalar loss. Arguments as BatchedLBFGS."""

    def __init__(self, params: Sequence[torch.Tensor], **options):
        super().__init__(list(params), n_models=1, **options)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self, closure: Closure) -> torch.Tensor:
        losses, _ = super().step(closure)
        return torch.tensor(losses[0])
