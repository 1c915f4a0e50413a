"""Outputs: a BIDS-Derivatives dataset of maps, sidecars and tables."""

from bids_encoding.derivatives.staging import (
    ParticipantOutput,
    derivative_name,
    software_versions,
    write_dataset_description,
)
from bids_encoding.derivatives.summary import participant_hemispheres, summary_scores

__all__ = [
    "ParticipantOutput",
    "derivative_name",
    "participant_hemispheres",
    "software_versions",
    "summary_scores",
    "write_dataset_description",
]
