"""Make the tiny token-generating target of the LLM examples and tests, with nothing from a model hub.

Runs in `.venv-llm` (torch + transformers 5 + tokenizers; `.ci/setup.d/llm-target.sh` calls it):

- a byte-level BPE tokenizer trained here with `tokenizers` on the repository's own docs (`docs/*.md`,
  `README.md`), with `<|begin_of_text|>`, `<|end_of_text|>` and `<|pad|>` and a plain chat template (the OpenAI
  chat endpoint of `transformers serve` renders messages with it);
- a decoder-only Llama (2 layers, hidden 64, 4 heads, random weights from a fixed seed) whose vocabulary is the
  tokenizer's, with a greedy generation config (no sampling unless a request asks for it);
- both saved with `save_pretrained` into one directory (`--out`), plus a `config.pbtxt` naming the model so the
  modelyzer engine reads a base model config for it (its `parameters` are the `transformers serve` knobs the
  `transformers_serve` launcher honours: none set here, so the server's defaults apply).

`tokenizer_config.json` gets `tokenizer_class: PreTrainedTokenizerFast`: transformers 5 writes a class name that
transformers 4.x (genai-perf's and AIPerf's venvs) does not know. Same inputs and seed → same files; `--digest`
prints a digest of the inputs (this script and the corpus) so the set-up rebuilds only when one changes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

SEED = 1234
VOCAB_SIZE = 2000
BOS, EOS, PAD = "<|begin_of_text|>", "<|end_of_text|>", "<|pad|>"
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\\n' + message['content'] + '\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)
ROOT = Path(__file__).resolve().parents[2]


def corpus_files(root: Path) -> list[Path]:
    """The local text files the tokenizer learns from, in a fixed order."""
    return [f for f in sorted((root / "docs").glob("*.md")) + [root / "README.md"] if f.is_file()]


def digest(root: Path) -> str:
    """What the made files depend on: this script and the corpus."""
    h = hashlib.sha256(Path(__file__).read_bytes())
    for f in corpus_files(root):
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def corpus(root: Path) -> list[str]:
    """The corpus files' text."""
    texts = [f.read_text(encoding="utf-8", errors="replace") for f in corpus_files(root)]
    if not texts:
        sys.exit(f"make_model: no text to train the tokenizer on under {root} (docs/*.md, README.md)")
    return texts


def make_tokenizer(texts: list[str]):  # type: ignore[no-untyped-def]
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=[BOS, EOS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD)
    fast.chat_template = CHAT_TEMPLATE
    return fast


def make_model(tokenizer):  # type: ignore[no-untyped-def]
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(SEED)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        do_sample=False,
        max_new_tokens=64,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "examples/llm/model_repository/tiny_llama")
    parser.add_argument("--digest", action="store_true", help="print the inputs' digest and exit")
    args = parser.parse_args(argv)
    if args.digest:
        print(digest(ROOT))
        return 0
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    tokenizer = make_tokenizer(corpus(ROOT))
    model = make_model(tokenizer)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)

    tc_path = out / "tokenizer_config.json"
    tc = json.loads(tc_path.read_text())
    tc["tokenizer_class"] = "PreTrainedTokenizerFast"  # transformers 4.x consumers (genai-perf, AIPerf)
    tc_path.write_text(json.dumps(tc, indent=2, sort_keys=True) + "\n")

    (out / "config.pbtxt").write_text(
        f'# The tiny Llama served by `transformers serve` (made by examples/llm/make_model.py).\n'
        f'# `parameters` may set the transformers_serve launcher\'s server knobs (see contrib/transformers_serve).\n'
        f'name: "{out.name}"\nbackend: "transformers"\nmax_batch_size: 0\n'
        f'instance_group [ {{ count: 1, kind: KIND_CPU }} ]  # one server process on this host\'s CPU\n'
    )
    params = sum(p.numel() for p in model.parameters())
    print(f"make_model: {out} ({params:,} parameters, vocabulary {len(tokenizer)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
