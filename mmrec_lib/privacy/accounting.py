"""Privacy budget of DP-SGD and DP-FedAvg: epsilon from the noise, and the noise for an epsilon."""

from __future__ import annotations

import functools
import logging

from mmrec_lib._validation import check_int, check_number
from mmrec_lib.errors import ParameterError

__all__ = ["epsilon_for", "noise_for_epsilon"]


def _check_accounting(noise_multiplier, sampling_rate, steps, delta) -> tuple[float, float, int, float]:
    noise_multiplier = check_number("noise_multiplier", noise_multiplier, low=0.0,
                                    low_inclusive=False)
    sampling_rate = check_number("sampling_rate", sampling_rate, low=0.0, high=1.0,
                                 low_inclusive=False)
    steps = check_int("steps", steps)
    delta = check_number("delta", delta, low=0.0, high=1.0, low_inclusive=False,
                         high_inclusive=False)
    return noise_multiplier, sampling_rate, steps, delta


def epsilon_for(noise_multiplier: float, sampling_rate: float, steps: int, delta: float, *,
                release_noise: float | None = None) -> float:
    """The epsilon of ``steps`` Poisson-sampled Gaussian mechanisms, by the RDP accountant.

    With ``release_noise``, one more Gaussian mechanism (sensitivity 1 in units of its own
    clip, noise multiplier ``release_noise``, no sub-sampling, e.g. a noised histogram
    released once) is composed with the steps (RDP composition of both events).

    Parameters
    ----------
    noise_multiplier : float > 0
        Noise standard deviation divided by the clipping norm.
    sampling_rate : float in (0, 1]
        Probability that one example (or one user, in federated learning) is in a step.
    steps : int >= 1
    delta : float in (0, 1)
        Usually below ``1 / number of examples``.
    release_noise : float > 0, optional
        Noise multiplier of the extra one-off Gaussian release.

    Returns
    -------
    float
        The smallest epsilon the accountant proves for this ``delta``.

    Examples
    --------
    >>> round(epsilon_for(1.1, 0.01, 1000, 1e-5), 1) < 3
    True
    """
    import dp_accounting
    from dp_accounting import rdp

    noise_multiplier, sampling_rate, steps, delta = _check_accounting(
        noise_multiplier, sampling_rate, steps, delta)
    event = dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(sampling_rate,
                                            dp_accounting.GaussianDpEvent(noise_multiplier)),
        steps)
    if release_noise is not None:
        release_noise = check_number("release_noise", release_noise, low=0.0,
                                     low_inclusive=False)
        event = dp_accounting.ComposedDpEvent(
            [event, dp_accounting.GaussianDpEvent(release_noise)])
    accountant = rdp.RdpAccountant()
    # For small noise some Renyi orders do not converge; the accountant drops them (the bound
    # stays valid) but warns through absl, which a learner would read as an error.
    absl_logger = logging.getLogger("absl")
    level = absl_logger.level
    absl_logger.setLevel(logging.ERROR)
    try:
        accountant.compose(event)
        return float(accountant.get_epsilon(delta))
    finally:
        absl_logger.setLevel(level)


def noise_for_epsilon(target_epsilon: float, sampling_rate: float, steps: int, delta: float, *,
                      low: float = 0.3, high: float = 100.0, tolerance: float = 1e-3,
                      release_noise: float | None = None) -> float:
    """The smallest noise multiplier whose :func:`epsilon_for` is at most ``target_epsilon``.

    Bisection on ``[low, high]``: epsilon falls as the noise grows. Raises
    ``ParameterError`` when even ``high`` is not enough or ``low`` is already private enough.
    ``release_noise`` (fixed) is passed on to :func:`epsilon_for`: the steps get what the
    one-off release leaves of the budget.
    """
    target_epsilon = check_number("target_epsilon", target_epsilon, low=0.0,
                                  low_inclusive=False)
    low = check_number("low", low, low=0.0, low_inclusive=False)
    high = check_number("high", high, low=low, low_inclusive=False)
    tolerance = check_number("tolerance", tolerance, low=0.0, low_inclusive=False)
    _check_accounting(low, sampling_rate, steps, delta)
    account = functools.partial(epsilon_for, release_noise=release_noise)
    if account(high, sampling_rate, steps, delta) > target_epsilon:
        raise ParameterError(f"target_epsilon={target_epsilon} needs a noise multiplier above "
                             f"high={high}")
    if account(low, sampling_rate, steps, delta) <= target_epsilon:
        return low
    while high - low > tolerance:
        middle = (low + high) / 2
        if account(middle, sampling_rate, steps, delta) > target_epsilon:
            low = middle
        else:
            high = middle
    return high
