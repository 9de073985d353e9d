"""Framework-free reading of DATA-001 files and grouping of scan positions."""
