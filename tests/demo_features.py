"""The demo data as training reads it, at any size, without running the pipeline."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from leadscore_assets.defs.training.training import read_features_csv
from leadscore_assets.demo.generator import generate
from leadscore_core.features import (
    CONTACT_ATTRIBUTES,
    CSV_COLUMNS,
    LABEL_COLUMN,
    LEAD_TIMESTAMP_COLUMN,
)


def demo_features_frame(n_leads: int, seed: int, directory: Path) -> pd.DataFrame:
    """The features CSV the pipeline exports for the generator's data, read as training reads
    it: the generator's pre-outcome truth per lead is exactly the mart's row
    (tests/test_point_in_time.py checks that), so dbt need not run."""
    export = generate(n_leads, seed)
    contacts = export.contacts.to_pandas().rename(columns={"created_at": LEAD_TIMESTAMP_COLUMN})
    frame = contacts.merge(export.truth.to_pandas(), on="contact_id", validate="one_to_one")
    frame[LABEL_COLUMN] = frame[LABEL_COLUMN].astype(int)
    # The demo's contacts carry no CRM attributes: the mart has them, empty (unknown).
    for attribute in CONTACT_ATTRIBUTES:
        if attribute.name not in frame:
            frame[attribute.name] = None
    path = directory / f"demo-features-{n_leads}-{seed}.csv"
    frame[list(CSV_COLUMNS)].to_csv(path, index=False)
    return read_features_csv(path)
