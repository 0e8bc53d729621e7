"""How a formula is fitted on a search's trials: the fits to choose from.

* ``frontier`` (the paper's): the GPs of r(c) and d(c) pass through the strict Pareto
  frontier of the trials (those no other trial beats with a smaller c), six points or so on
  the presets;
* ``surrogate``: every finished trial shapes a GP of top-1 over (log r, log d, log c)
  (:mod:`.surrogate`); its best (r, d) along each budget is the path the GPs of r(c) and d(c)
  are fitted on.

Either way the formula file holds GP posteriors of r(c) and d(c) in plain floats, and a band
(:mod:`.band`) from refitting the same way on resampled trials. The default is the surrogate:
validated beside the frontier fit of the same trials (default and smoke presets, two bases),
it never scored below it by more than the noise, and won where the frontier was thinnest
(docs/formula-fits.md has the figures).
"""

from __future__ import annotations

FITS = ("frontier", "surrogate")
# The fewest points r(c) and d(c) are fitted on, either way: fewer leave the GPs their prior.
MIN_POINTS = 3
DEFAULT_FIT = "surrogate"

DESCRIPTIONS = {
    "frontier": "GPs through the Pareto frontier (the paper's fit)",
    "surrogate": "GPs along the best (r, d) of a top-1 surrogate of every trial",
}
