"""`python -m batch_openai`: the same as the `batch-openai` command."""

from batch_openai.cli import main

if __name__ == "__main__":
    main()
