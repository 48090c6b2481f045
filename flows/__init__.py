"""Prefect flows for batch-openai."""
