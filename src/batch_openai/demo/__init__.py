"""The bundled demo: dataset and the job it runs."""
