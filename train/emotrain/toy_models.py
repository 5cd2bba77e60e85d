"""Small random-weight classifiers of the seed models' architecture classes, made offline.

Each is a real transformers model (a few layers, small hidden size) saved with a tokenizer trained
on the spot by `tokenizers`: byte-level BPE for RoBERTa, WordPiece for BERT and DistilBERT. It
goes through exactly the export and serving code a hub model goes through, in seconds.

    python -m emotrain.toy_models roberta-multilabel /tmp/toy-roberta
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from tokenizers import (
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
    trainers,
)
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    BertModel,
    BertTokenizer,
    DistilBertConfig,
    DistilBertForSequenceClassification,
    DistilBertTokenizer,
    PreTrainedModel,
    RobertaConfig,
    RobertaForSequenceClassification,
    RobertaTokenizer,
)

from emoexport.labels import EMOTION_LABELS, GO_EMOTIONS_LABELS

CORPUS = """\
I am not having a great day.
Thank you so much, this means a lot to me!
Wow, I did not expect that at all.
This is the worst customer service I have ever had.
I'm so proud of you for finishing the marathon.
Why would anyone think that is a good idea?
I miss my grandmother every single day.
Haha that's hilarious, I can't stop laughing.
I'm really nervous about the exam tomorrow.
What a relief, the tests came back negative.
I love this song so much.
That is disgusting, please stop.
Honestly I don't care either way.
I feel so embarrassed about what I said yesterday.
Can you explain how this works? I'm confused.
I hope things get better for you soon.
We won the game! Let's go!
I'm sorry, I should not have done that.
The weather is nice and the coffee is warm.
I would really like a new bike for my birthday.
He finally realized that he was wrong.
She was furious when she saw the broken window.
I'm scared of the dark and of spiders.
i didnt feel humiliated
i can go from feeling so hopeless to so damned hopeful
im grabbing a minute to post i feel greedy wrong
i am ever feeling nostalgic about the fireplace
"""


def _corpus() -> list[str]:
    return CORPUS.splitlines()


def bpe_tokenizer(max_length: int, vocab_size: int = 600) -> RobertaTokenizer:
    """A RoBERTa-style byte-level BPE tokenizer: any text encodes, nothing is unknown."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(_corpus(), trainer)
    end, start = tokenizer.token_to_id("</s>"), tokenizer.token_to_id("<s>")
    assert end is not None and start is not None, "the special tokens are trained first"
    tokenizer.post_processor = processors.RobertaProcessing(("</s>", end), ("<s>", start))
    return RobertaTokenizer(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
        model_max_length=max_length,
    )


def wordpiece_tokenizer(
    max_length: int, tokenizer_class: type = BertTokenizer, vocab_size: int = 600
):
    """A BERT-style uncased WordPiece tokenizer.

    Its vocabulary is the corpus's characters (alone and as `##` suffixes) and whole words, in
    sorted order: tokenizers' WordPieceTrainer breaks ties in hash order, so each process
    trained another vocabulary and the same seed built another model.
    """
    normalizer = normalizers.BertNormalizer(lowercase=True)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    words = {
        word
        for line in _corpus()
        for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(line))
    }
    characters = sorted(set("".join(words)))
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    pieces = [*specials, *characters, *(f"##{c}" for c in characters), *sorted(words)]
    vocabulary = {piece: i for i, piece in enumerate(list(dict.fromkeys(pieces))[:vocab_size])}
    tokenizer = Tokenizer(models.WordPiece(vocabulary, unk_token="[UNK]"))
    tokenizer.normalizer = normalizer
    tokenizer.pre_tokenizer = pre_tokenizer
    tokenizer.decoder = decoders.WordPiece()
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return tokenizer_class(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=max_length,
    )


# A wider initialisation than transformers' 0.02 makes a random model's output depend on the text.
_INIT: dict[str, Any] = {"initializer_range": 0.2}
_SMALL: dict[str, Any] = {
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    **_INIT,
}


def spread_logits(
    model: PreTrainedModel,
    tokenizer,
    target_std: float = 3.0,
    logits_of=lambda output: output.logits,
) -> None:
    """Scale the output layer so logits over the corpus have std `target_std`: scores that vary
    with the text, and mostly sit far from 0.5, where a 1e-6 difference would flip a decision."""
    num_labels = model.config.num_labels
    head = [
        m
        for m in model.modules()
        if isinstance(m, torch.nn.Linear) and m.out_features == num_labels
    ][-1]
    with torch.no_grad():
        head.bias.zero_()
        logits = logits_of(model.eval()(**tokenizer(_corpus(), padding=True, return_tensors="pt")))
        head.weight.mul_(target_std / logits.std())


def _labels(labels: Sequence[str]) -> dict[str, Any]:
    return {
        "id2label": dict(enumerate(labels)),
        "label2id": {name: i for i, name in enumerate(labels)},
    }


def small_roberta_config(
    tokenizer, max_length: int, labels: Sequence[str], **extra
) -> RobertaConfig:
    return RobertaConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=max_length + 2,  # RoBERTa's positions start after the padding index
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **_labels(labels),
        **_SMALL,
        **extra,
    )


def roberta_multilabel(labels: Sequence[str] = GO_EMOTIONS_LABELS, max_length: int = 64):
    """Like SamLowe/roberta-base-go_emotions: RoBERTa, 28 labels, multi-label (sigmoid)."""
    tokenizer = bpe_tokenizer(max_length)
    config = small_roberta_config(
        tokenizer, max_length, labels, problem_type="multi_label_classification"
    )
    return RobertaForSequenceClassification(config), tokenizer


def distilbert_single_label(labels: Sequence[str] = EMOTION_LABELS, max_length: int = 64):
    """Like the dair-ai emotion DistilBERTs: 6 labels, single-label (softmax), no token_type_ids."""
    tokenizer = wordpiece_tokenizer(max_length, DistilBertTokenizer)
    config = DistilBertConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=max_length,
        pad_token_id=tokenizer.pad_token_id,
        dim=32,
        hidden_dim=64,
        n_layers=2,
        n_heads=2,
        **_INIT,
        **_labels(labels),
    )
    return DistilBertForSequenceClassification(config), tokenizer


def bert_single_label(labels: Sequence[str] = EMOTION_LABELS, max_length: int = 64):
    """BERT, single-label: the architecture that also takes token_type_ids."""
    tokenizer = wordpiece_tokenizer(max_length, BertTokenizer)
    config = BertConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=max_length,
        pad_token_id=tokenizer.pad_token_id,
        **_labels(labels),
        **_SMALL,
    )
    return BertForSequenceClassification(config), tokenizer


BUILDERS: dict[str, Callable] = {
    "roberta-multilabel": roberta_multilabel,
    "distilbert-single-label": distilbert_single_label,
    "bert-single-label": bert_single_label,
}


def build(kind: str, directory: str | Path, seed: int = 0, **options) -> Path:
    """Save a toy model of `kind` (see BUILDERS) with its tokenizer into `directory`."""
    torch.manual_seed(seed)
    model, tokenizer = BUILDERS[kind](**options)
    spread_logits(model, tokenizer)
    directory = Path(directory)
    model.eval().save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def build_sentence_encoder(directory: str | Path, seed: int = 0, max_length: int = 64) -> Path:
    """A small BERT sentence encoder saved the sentence-transformers way: the transformer,
    mean pooling over the attention mask, then L2 normalisation (all-MiniLM's recipe)."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import modules as st_models

    torch.manual_seed(seed)
    directory = Path(directory)
    tokenizer = wordpiece_tokenizer(max_length, BertTokenizer)
    config = BertConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=max_length,
        pad_token_id=tokenizer.pad_token_id,
        **_SMALL,
    )
    body = directory / "body"
    BertModel(config).save_pretrained(body)
    tokenizer.save_pretrained(body)
    transformer = st_models.Transformer(str(body), max_seq_length=max_length)
    pooling = st_models.Pooling(config.hidden_size, pooling_mode="mean")
    encoder = SentenceTransformer(
        modules=[transformer, pooling, st_models.Normalize()], device="cpu"
    )
    encoder.save(str(directory / "encoder"))
    return directory / "encoder"


def build_head(
    directory: str | Path,
    dim: int,
    labels: Sequence[str] = GO_EMOTIONS_LABELS,
    thresholds: Sequence[float] | None = None,
    seed: int = 0,
) -> Path:
    """A random linear head in seed 001's format (model.onnx + thresholds.json)."""
    from .head_training import HeadNet, write_head
    from .settings import HeadSettings

    torch.manual_seed(seed)
    net = HeadNet(dim, len(labels), HeadSettings(hidden=0))
    with torch.no_grad():  # spread the scores over (0, 1), not all near 0.5
        last = net.layers[-1]
        assert isinstance(last, torch.nn.Linear)
        last.weight.mul_(40.0)
    chosen = (
        thresholds
        if thresholds is not None
        else [0.2 + 0.6 * i / len(labels) for i in range(len(labels))]
    )
    return write_head(net.eval(), tuple(labels), torch.tensor(chosen).numpy(), Path(directory))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=sorted(BUILDERS))
    parser.add_argument("directory", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(build(args.kind, args.directory, seed=args.seed))


if __name__ == "__main__":
    main()
