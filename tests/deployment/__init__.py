"""Tests of the deployment manifest package (rewrite and lint)."""
