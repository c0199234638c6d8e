"""The feedback form: a Gradio Blocks page that reads and writes the local SQLite store only."""
