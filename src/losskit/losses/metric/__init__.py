"""Metric-learning losses: distances, miners, pair/triplet losses, InfoNCE, proxies."""
