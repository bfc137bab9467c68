"""Evaluation: synthetic test split with classical baselines, rosbag replay, reports."""
