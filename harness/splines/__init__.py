"""The one spline module of every KAN layer (reference `KANLayer`, `FastKANLayer`, the stacked
layer): bases behind one interface (`Basis`, harness.splines.basis, which says what a new basis
provides), `BSpline` the one implemented today, its evaluation strategies (dense Cox-de Boor,
local closed form / BSPLVB, pp-form), the interval search, and grid updates and extensions. Every
tensor has a leading model axis M; a solo layer is M = 1.

    bspline.py  BSpline: Cox-de Boor, the knot rules of grid updates and extensions
    knots.py    knot padding (pykan `extend_grid`)
    basis.py    Basis: the interface, least-squares fit, refit, update_grid, extend
    local.py    the k+1 nonzero B-splines and slopes (closed form on uniform knots, BSPLVB)
    ppform.py   pp-form conversion, Horner's rule, the dense basis from the pp-form
    search.py   the interval search (bucket tables)
    rbf.py      GaussianRBF: FastKAN's Gaussian radial basis on uniform centres (Li 2024)
    chebyshev.py  Chebyshev: T_d(tanh x), d = 0..D (SS et al. 2024); exact degree extension
    fourier.py  Fourier: cos kx, sin kx, k = 1..K (FourierKAN); exact extension
"""
from harness.splines.basis import Basis
from harness.splines.bspline import BSpline, cox_de_boor, pad_knots
from harness.splines.chebyshev import Chebyshev
from harness.splines.fourier import Fourier
from harness.splines.rbf import GaussianRBF

__all__ = ["Basis", "BSpline", "Chebyshev", "Fourier", "GaussianRBF", "cox_de_boor", "pad_knots"]
