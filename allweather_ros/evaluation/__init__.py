"""Bag evaluation: synthetic weather bags, replay through the pipeline or the node, reports."""
