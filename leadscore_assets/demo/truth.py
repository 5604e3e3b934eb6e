"""What the generator's latent model implies: the numbers docs/synthetic_data.md reports."""

from __future__ import annotations

from sklearn.metrics import roc_auc_score

from leadscore_assets.demo.generator import generate
from leadscore_core.features import FEATURE_SETS


def measure(n_leads: int, seed: int) -> dict[str, float | int]:
    """Base rate, the high-probability share, and the ROC AUC of perfect models.

    "Perfect on the seed's features" scores each lead by the mean true probability of all leads
    with the same four seed features, E[p | features]: the best any model of those four features
    can do (estimated from the sample, so use many leads).
    """
    truth = generate(n_leads, seed).truth.to_pandas()
    seed_features = list(FEATURE_SETS["seed"])
    bayes_seed = truth.groupby(seed_features)["true_probability"].transform("mean")
    return {
        "leads": n_leads,
        "conversion_rate": float(truth["is_won"].mean()),
        "share_true_probability_above_0.8": float((truth["true_probability"] > 0.8).mean()),
        "auc_perfect_model_all_latent_factors": float(
            roc_auc_score(truth["is_won"], truth["true_probability"])
        ),
        "auc_perfect_model_seed_features": float(roc_auc_score(truth["is_won"], bayes_seed)),
        "seed_feature_combinations": int(truth.groupby(seed_features).ngroups),
    }
