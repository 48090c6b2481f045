"""batch-openai: run bulk LLM work through OpenAI's Batch API."""

__version__ = "0.5.0.dev0"
