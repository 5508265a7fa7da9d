"""Domain code for scoring (plain Python): LTV models in ``ml.ltv`` (BG/NBD, Gamma-Gamma, CLV), the CDNOW
validation sample in ``ml.cdnow``; churn, features and ranking beside them.

The LTV API is re-exported lazily (``from ml import BGNBD``) so importing ``ml`` stays cheap.
"""

_LTV_EXPORTS = (
    "BGNBD",
    "GammaGamma",
    "clv",
    "rfm_summary",
    "rfm_calibration_holdout",
    "simulate_bgnbd",
    "simulate_gamma_gamma",
)


def __getattr__(name: str):
    if name in _LTV_EXPORTS:
        from ml import ltv

        return getattr(ltv, name)
    raise AttributeError(f"module 'ml' has no attribute {name!r}")
