"""modelyzer's `transformers_serve` launcher: profiles a Hugging Face model served by `transformers serve`."""
