"""Outputs: a BIDS-Derivatives dataset of maps, sidecars and tables."""

from bids_encoding.outputs.derivatives import (
    ParticipantOutput,
    derivative_name,
    hemisphere_masks,
    software_versions,
    summary_scores,
    write_dataset_description,
)

__all__ = [
    "ParticipantOutput",
    "derivative_name",
    "hemisphere_masks",
    "software_versions",
    "summary_scores",
    "write_dataset_description",
]
