"""A byte-level BPE tokenizer trained with `tokenizers`, saved as a transformers tokenizer folder
with a ChatML chat template (the one SmolLM2 uses), so transformers and vLLM load it as is."""
from __future__ import annotations

from pathlib import Path

EOS_TEXT = "<|endoftext|>"  # separates pre-training documents
IM_START, IM_END, PAD = "<|im_start|>", "<|im_end|>", "<|pad|>"
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def train_tokenizer(texts: list[str], vocab_size: int, out: Path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS_TEXT, IM_START, IM_END, PAD],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    # Chat markers are part of what the model must learn to read: train on a few formatted turns too.
    tok.train_from_iterator(texts + ["user\nassistant\nsystem\n"] * 100, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=None, eos_token=IM_END, pad_token=PAD,
                                   unk_token=None, additional_special_tokens=[EOS_TEXT, IM_START])
    fast.chat_template = CHAT_TEMPLATE
    fast.model_max_length = 2048
    out.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(out)
    return fast
