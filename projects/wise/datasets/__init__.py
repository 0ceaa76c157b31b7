"""Datasets and the VOC on-disk layout."""
