"""Framework-free reading of DATA-001 files and the train/validation split of groups.

The grouping rule itself is :mod:`fly64_data.grouping`.
"""
