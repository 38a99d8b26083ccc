"""File formats: the NA64RAW1 raw format and the intermediate tables."""
