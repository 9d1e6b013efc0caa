"""Fixed-point positions of the coding form's integers: a value v travels as round(v * 2^BITS)."""

from . import likelihoods

Z_BITS = 12  # codes z, prior shifts, posterior means, bin edges and centres
Z_MAX = 16 << Z_BITS
LOG_BITS = 10  # log sigma, log scales
LOGIT_BITS = 8  # Bernoulli and mixture logits
LOGIT_MAX = 16 << LOGIT_BITS
MEAN_BITS = 12  # mixture means, in input units
MEAN_MAX = 2 << MEAN_BITS
COEF_BITS = 12  # channel coefficients
COEF_MAX = int(likelihoods.COEF_MAX) << COEF_BITS
EXP_BITS = 24  # exp table output: exp(l) * 2^EXP_BITS, l in [-EXP_RANGE, EXP_RANGE]
EXP_RANGE = 9
CDF_BITS = 30  # Gaussian and logistic CDF table outputs
T_BITS = 10  # CDF table inputs: t * 2^T_BITS, t in [-T_MAX, T_MAX] (Gaussian), [-L_MAX, L_MAX]
T_MAX = 8
L_MAX = 24
WEIGHT_BITS = 16  # mixture weight table output: exp(logit - max logit) * 2^WEIGHT_BITS
OFFSET_BITS = 6  # pixel parameter offsets (`with_offsets`) are multiples of 2^-OFFSET_BITS
OFFSET_MAX = 4 << OFFSET_BITS
