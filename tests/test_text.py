"""Tests of mmrec_lib.text: preprocessing, BERT loading and encoding, LSTM, cached features."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mmrec_lib  # noqa: F401  (Keras 2 set-up before TensorFlow)
from mmrec_lib import text
from mmrec_lib.errors import DataError, ModelError, NotFittedError, ParameterError

FIXTURES = Path(__file__).resolve().parent / "fixtures"
GOLDEN = FIXTURES / "text_golden_minilm.npz"
MASK_SENTENCE = "Fill in the [MASK] word"


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def minilm_cache(tmp_path_factory) -> Path:
    """A cache folder holding the converted MiniLM (converted once for this module)."""
    folder = tmp_path_factory.mktemp("mmrec-text-cache")
    text.convert_minilm(data_dir=folder)
    return folder


@pytest.fixture(scope="module")
def golden() -> dict:
    with np.load(GOLDEN, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="module")
def encoder(minilm_cache, golden) -> text.BertTextEncoder:
    return text.BertTextEncoder(max_length=int(golden["max_seq_length"]),
                                data_dir=minilm_cache).fit()


TINY_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "cat", "dog", "piano", "##s", "a"]
TINY_CONFIG = {"hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
               "intermediate_size": 16, "vocab_size": len(TINY_VOCAB),
               "max_position_embeddings": 16, "type_vocab_size": 2, "hidden_act": "gelu",
               "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1}


def tiny_variables(config: dict, seed: int = 0) -> dict:
    """Random weights under the Google names for a BERT of the given config."""
    rng = np.random.default_rng(seed)
    hidden, inner = config["hidden_size"], config["intermediate_size"]

    def w(*shape):
        return rng.normal(0, 0.2, shape).astype(np.float32)

    variables = {
        "bert/embeddings/word_embeddings": w(config["vocab_size"], hidden),
        "bert/embeddings/position_embeddings": w(config["max_position_embeddings"], hidden),
        "bert/embeddings/token_type_embeddings": w(config["type_vocab_size"], hidden),
        "bert/embeddings/LayerNorm/gamma": np.ones(hidden, np.float32),
        "bert/embeddings/LayerNorm/beta": np.zeros(hidden, np.float32),
    }
    for i in range(config["num_hidden_layers"]):
        p = f"bert/encoder/layer_{i}/"
        for name in ("attention/self/query", "attention/self/key", "attention/self/value",
                     "attention/output/dense"):
            variables[p + name + "/kernel"] = w(hidden, hidden)
            variables[p + name + "/bias"] = w(hidden)
        variables[p + "intermediate/dense/kernel"] = w(hidden, inner)
        variables[p + "intermediate/dense/bias"] = w(inner)
        variables[p + "output/dense/kernel"] = w(inner, hidden)
        variables[p + "output/dense/bias"] = w(hidden)
        for norm in ("attention/output/LayerNorm", "output/LayerNorm"):
            variables[p + norm + "/gamma"] = np.ones(hidden, np.float32)
            variables[p + norm + "/beta"] = np.zeros(hidden, np.float32)
    return variables


@pytest.fixture
def tiny_checkpoint(tmp_path) -> Path:
    """A random 1-layer, 8-d BERT in Google format (fast to load)."""
    folder = tmp_path / "tiny_bert"
    text.write_bert_checkpoint(folder, tiny_variables(TINY_CONFIG), config=TINY_CONFIG,
                               vocab=TINY_VOCAB)
    return folder


# --------------------------------------------------------------------------- normalisation

def test_normalize_text_folds_width_case_and_whitespace():
    assert text.normalize_text("  ＨＥＬＬＯ\tWorld ①  ") == "hello world 1"


def test_normalize_text_keeps_case_when_asked():
    assert text.normalize_text("Hello  World", lowercase=False) == "Hello World"


def test_normalize_text_removes_control_characters_and_zero_width_space():
    assert text.normalize_text("Hello\u200bworld\x00!") == "hello world!"


@pytest.mark.parametrize("value", ["", "   ", "\t\n\r"])
def test_normalize_text_empty_and_whitespace_only_give_empty(value):
    assert text.normalize_text(value) == ""


def test_normalize_text_keeps_emoji_and_joined_emoji():
    assert text.normalize_text("😀 👨\u200d👩\u200d👧") == "😀 👨\u200d👩\u200d👧"


def test_normalize_text_very_long_text_is_kept_whole():
    assert text.normalize_text("Word " * 10_000) == ("word " * 10_000).strip()


def test_normalize_text_none_raises():
    with pytest.raises(ParameterError, match="None"):
        text.normalize_text(None)


def test_normalize_text_non_string_raises():
    with pytest.raises(ParameterError, match="int"):
        text.normalize_text(42)


def test_normalize_text_bad_form_raises():
    with pytest.raises(ParameterError, match="form"):
        text.normalize_text("a", form="NFD")


def test_text_normalizer_transform_before_fit_raises():
    with pytest.raises(NotFittedError):
        text.TextNormalizer().transform(["a"])


def test_text_normalizer_transforms_a_series():
    result = text.TextNormalizer().fit_transform(pd.Series(["A  B", "Ｃ"]))
    assert result == ["a b", "c"]


# --------------------------------------------------------------------------- check_texts

def test_check_texts_accepts_arrays_and_series():
    assert text.check_texts(np.array(["a", "b"])) == ["a", "b"]
    assert text.check_texts(pd.Series(["a"])) == ["a"]


def test_check_texts_none_raises():
    with pytest.raises(ParameterError, match="None"):
        text.check_texts(None)


def test_check_texts_single_string_raises():
    with pytest.raises(ParameterError, match="wrap one text in a list"):
        text.check_texts("a title")


def test_check_texts_empty_list_raises():
    with pytest.raises(ParameterError, match="empty"):
        text.check_texts([])


def test_check_texts_non_string_item_raises():
    with pytest.raises(ParameterError, match=r"texts\[1\]=3"):
        text.check_texts(["a", 3])


def test_check_texts_missing_value_raises():
    with pytest.raises(ParameterError, match=r"texts\[0\]=nan"):
        text.check_texts([float("nan")])


def test_check_texts_other_type_raises():
    with pytest.raises(ParameterError, match="dict"):
        text.check_texts({"a": 1})


# --------------------------------------------------------------------------- words, jieba

def test_tokenize_words_english_with_stop_words():
    words = text.tokenize_words("The cat is on the mat!", stop_words=text.ENGLISH_STOP_WORDS)
    assert words == ["cat", "mat"]


def test_tokenize_words_keeps_inner_apostrophes_and_drops_emoji():
    assert text.tokenize_words("Don't stop: 1 more time! 😀") == \
        ["don't", "stop", "1", "more", "time"]


def test_tokenize_words_mixed_language_keeps_both_parts():
    assert text.tokenize_words("北京街头美食探店 Vlog") == ["北京街头", "美食", "探店", "vlog"]


@pytest.mark.parametrize("value", ["", "   ", "😀🎉", "!!!"])
def test_tokenize_words_no_words_gives_empty_list(value):
    assert text.tokenize_words(value) == []


def test_tokenize_words_bad_language_raises():
    with pytest.raises(ParameterError, match="language"):
        text.tokenize_words("a", language="fr")


def test_word_tokenizer_removes_english_and_chinese_stop_words():
    tokenizer = text.WordTokenizer().fit()
    assert tokenizer.transform(["The cat is on the mat", "我的猫会弹钢琴"]) == \
        [["cat", "mat"], ["猫", "弹钢琴"]]


def test_word_tokenizer_string_stop_words_raises():
    with pytest.raises(ParameterError, match="stop_words"):
        text.WordTokenizer(stop_words="the").fit()


def test_segment_chinese_with_pos_tags():
    assert text.segment_chinese("我的猫会弹钢琴", pos_tags=True) == \
        [("我", "r"), ("的", "uj"), ("猫会", "n"), ("弹钢琴", "n")]


def test_chinese_segmenter_drops_stop_words_and_punctuation():
    segmenter = text.ChineseSegmenter().fit()
    assert segmenter.transform(["周末去海边露营，看日出"]) == \
        [["周末", "海边", "露营", "看", "日出"]]


def test_chinese_segmenter_pos_pairs():
    segmenter = text.ChineseSegmenter(pos_tags=True).fit()
    assert segmenter.transform(["十分钟学会做红烧肉"]) == \
        [[("十分钟", "m"), ("学会", "n"), ("做", "v"), ("红烧肉", "n")]]


def test_chinese_segmenter_keeps_everything_without_stop_word_removal():
    segmenter = text.ChineseSegmenter(remove_stop_words=False).fit()
    # NFKC normalisation first folds the full-width comma into ",".
    assert segmenter.transform(["我的猫，"]) == [["我", "的", "猫", ","]]


@pytest.mark.parametrize("value", ["", "  ", "😀"])
def test_chinese_segmenter_empty_and_emoji_only(value):
    assert text.ChineseSegmenter().fit().transform([value]) == [[]]


def test_keyword_extractor_ranks_by_tfidf():
    extractor = text.KeywordExtractor(top_k=2).fit(["cat video funny", "dog video",
                                                    "cat piano piano"])
    assert extractor.idf_["video"] == pytest.approx(np.log(4 / 3) + 1)
    assert extractor.transform(["cat piano piano", "dog video", ""]) == \
        [["piano", "cat"], ["dog", "video"], []]


def test_keyword_extractor_bad_top_k_raises():
    with pytest.raises(ParameterError, match="top_k=0"):
        text.KeywordExtractor(top_k=0).fit(["a b"])


# --------------------------------------------------------------------------- conversion

@pytest.mark.parametrize("hf_name, google_name", [
    ("encoder.layer.3.attention.self.query.weight",
     "bert/encoder/layer_3/attention/self/query/kernel"),
    ("encoder.layer.0.attention.output.LayerNorm.weight",
     "bert/encoder/layer_0/attention/output/LayerNorm/gamma"),
    ("encoder.layer.5.output.LayerNorm.bias", "bert/encoder/layer_5/output/LayerNorm/beta"),
    ("encoder.layer.1.intermediate.dense.bias", "bert/encoder/layer_1/intermediate/dense/bias"),
    ("embeddings.word_embeddings.weight", "bert/embeddings/word_embeddings"),
    ("bert.embeddings.LayerNorm.weight", "bert/embeddings/LayerNorm/gamma"),
    ("pooler.dense.weight", "bert/pooler/dense/kernel"),
    ("embeddings.position_ids", None),
])
def test_hf_to_google_name(hf_name, google_name):
    assert text.hf_to_google_name(hf_name) == google_name


def test_hf_to_google_name_rejects_foreign_weights():
    with pytest.raises(ModelError, match="lm_head"):
        text.hf_to_google_name("lm_head.dense.weight")


def test_convert_minilm_writes_a_google_checkpoint(minilm_cache):
    import tensorflow as tf

    folder = minilm_cache / "bert" / f"{text.MINILM_NAME}-google"
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith("bert_model")) == \
        ["SOURCE.json", "bert_config.json", "checkpoint", "vocab.txt"]
    shapes = dict(tf.train.list_variables(str(folder / text.CHECKPOINT_PREFIX)))
    assert shapes["bert/encoder/layer_3/attention/self/query/kernel"] == [384, 384]
    assert shapes["bert/encoder/layer_5/intermediate/dense/kernel"] == [384, 1536]
    assert shapes["bert/embeddings/word_embeddings"] == [30522, 384]
    assert json.loads((folder / "bert_config.json").read_text())["num_hidden_layers"] == 6


def test_convert_minilm_transposes_linear_weights(minilm_cache):
    import tensorflow as tf
    from safetensors.numpy import load_file

    source = load_file(str(text._bert_checkpoint._minilm_source() / "model.safetensors"))
    prefix = str(minilm_cache / "bert" / f"{text.MINILM_NAME}-google" / text.CHECKPOINT_PREFIX)
    kernel = tf.train.load_variable(prefix, "bert/encoder/layer_0/intermediate/dense/kernel")
    np.testing.assert_array_equal(kernel, source["encoder.layer.0.intermediate.dense.weight"].T)


def test_convert_minilm_reuses_the_cached_conversion(minilm_cache):
    index = minilm_cache / "bert" / f"{text.MINILM_NAME}-google" / "bert_model.ckpt.index"
    before = index.stat().st_mtime_ns
    assert text.convert_minilm(data_dir=minilm_cache) == index.parent
    assert index.stat().st_mtime_ns == before


def test_convert_minilm_leaves_no_temporary_folder(minilm_cache):
    assert [p.name for p in (minilm_cache / "bert").iterdir()] == [f"{text.MINILM_NAME}-google"]


# --------------------------------------------------------------------------- golden fixture

def test_golden_fixture_has_at_least_25_sentences(golden):
    assert len(golden["sentences"]) >= 25
    assert golden["embeddings"].shape == (len(golden["sentences"]), 384)


def test_golden_embeddings_match_sentence_transformers(encoder, golden):
    sentences = [str(s) for s in golden["sentences"]]
    vectors = encoder.encode(sentences)
    cosine = np.sum(vectors * golden["embeddings"], axis=1)
    checked = [i for i, s in enumerate(sentences) if s != MASK_SENTENCE]
    assert len(checked) == len(sentences) - 1
    assert cosine[checked].min() >= 0.9999, dict(zip(sentences, cosine.round(6)))


def test_golden_token_ids_match_the_reference_tokenizer(encoder, golden):
    for sentence, reference in zip(golden["sentences"], golden["token_ids"]):
        if sentence == MASK_SENTENCE:
            continue
        ours = encoder.token_ids([str(sentence)])[0]
        assert ours == reference[reference >= 0].tolist(), sentence


def test_literal_mask_text_is_plain_text_for_bert4keras(encoder, golden):
    # Hugging Face maps the literal text "[MASK]" to the special token (id 103);
    # bert4keras reads it as the characters "[", "mask", "]": user text cannot
    # inject special tokens. The vectors therefore differ from the reference.
    assert encoder.tokenize(MASK_SENTENCE) == \
        ["[CLS]", "fill", "in", "the", "[", "mask", "]", "word", "[SEP]"]
    row = list(golden["sentences"]).index(MASK_SENTENCE)
    assert 103 in golden["token_ids"][row].tolist()
    assert 103 not in encoder.token_ids([MASK_SENTENCE])[0]


def test_over_long_words_become_unk_as_in_the_reference(encoder):
    # Hugging Face turns words longer than 100 characters into [UNK]; bert4keras's
    # default limit is 200, so mmrec_lib sets word_maxlen=100 to agree.
    from bert4keras.tokenizers import Tokenizer

    word = "x" * 150
    assert encoder.token_ids([word]) == [[101, 100, 102]]
    default = Tokenizer(encoder.bert_.checkpoint.vocab, do_lower_case=True)
    assert len(default.encode(word)[0]) == 77  # "xx" followed by 74 "##xx"


# --------------------------------------------------------------------------- encoder

def test_default_encoder_gives_unit_rows_of_dimension_384(encoder):
    vectors = encoder.encode(["a cat plays the piano", "dog surfing", "我的猫"])
    assert vectors.shape == (3, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)


def test_encode_keeps_input_order(encoder):
    texts = ["short", "a much longer title with many more words in it", "mid length title"]
    forward = encoder.encode(texts)
    backward = encoder.encode(texts[::-1])
    np.testing.assert_allclose(forward, backward[::-1], atol=1e-6)


def test_encode_does_not_depend_on_batch_size(encoder):
    texts = ["one", "two words", "three words here", "and a fourth, longer title", ""]
    np.testing.assert_allclose(encoder.encode(texts, batch_size=1),
                               encoder.encode(texts, batch_size=64), atol=1e-5)


def test_similar_titles_are_closer_than_unrelated_ones(encoder):
    a, b, c = encoder.encode(["cute kitten playing", "funny cat video", "stock market news"])
    assert a @ b > a @ c + 0.2


def test_empty_and_whitespace_texts_share_the_cls_sep_vector(encoder):
    vectors = encoder.encode(["", "   ", "\t\n"])
    np.testing.assert_allclose(vectors[0], vectors[1], atol=1e-6)
    np.testing.assert_allclose(vectors[0], vectors[2], atol=1e-6)
    assert encoder.token_ids([""]) == [[101, 102]]


def test_long_text_is_truncated_to_max_length(minilm_cache):
    short = text.BertTextEncoder(max_length=16, data_dir=minilm_cache)
    long_text = "the harbour at dawn " * 50
    assert len(short.token_ids([long_text])[0]) == 16
    assert short.tokenize(long_text)[-1] == "[SEP]"
    a, b = short.encode([long_text, long_text + " and something else entirely"])
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_cls_pooling_returns_the_normalised_first_hidden_state(minilm_cache):
    encoder = text.BertTextEncoder(pooling="cls", data_dir=minilm_cache)
    vector = encoder.encode(["guitar cover"])[0]
    ids = np.array(encoder.token_ids(["guitar cover"]), dtype=np.int32)
    hidden = encoder.bert_.model([ids, np.zeros_like(ids)], training=False).numpy()[0, 0]
    np.testing.assert_allclose(vector, hidden / np.linalg.norm(hidden), atol=1e-5)


def test_loading_twice_shares_the_model(minilm_cache):
    assert text.load_bert(data_dir=minilm_cache) is text.load_bert(data_dir=minilm_cache)


def test_encode_none_raises(encoder):
    with pytest.raises(ParameterError, match="None"):
        encoder.encode(None)


def test_encode_single_string_raises(encoder):
    with pytest.raises(ParameterError, match="list of str"):
        encoder.encode("a title")


def test_encode_empty_list_raises(encoder):
    with pytest.raises(ParameterError, match="empty"):
        encoder.encode([])


def test_encode_non_string_item_raises(encoder):
    with pytest.raises(ParameterError, match=r"texts\[1\]=None"):
        encoder.encode(["fine", None])


def test_encode_bad_batch_size_raises(encoder):
    with pytest.raises(ParameterError, match="batch_size=0"):
        encoder.encode(["a"], batch_size=0)


def test_encoder_max_length_too_small_raises(minilm_cache):
    with pytest.raises(ParameterError, match="max_length=1"):
        text.BertTextEncoder(max_length=1, data_dir=minilm_cache).encode(["a"])


def test_encoder_max_length_beyond_positions_raises(minilm_cache):
    with pytest.raises(ParameterError, match="max_position_embeddings=512"):
        text.BertTextEncoder(max_length=1000, data_dir=minilm_cache).encode(["a"])


def test_encoder_bad_pooling_raises(minilm_cache):
    with pytest.raises(ParameterError, match="pooling='max'"):
        text.BertTextEncoder(pooling="max", data_dir=minilm_cache).fit()


def test_encoder_transform_before_fit_raises():
    with pytest.raises(NotFittedError):
        text.BertTextEncoder().transform(["a"])


# --------------------------------------------------------------------------- checkpoints

def test_tiny_checkpoint_loads_and_encodes(tiny_checkpoint):
    encoder = text.BertTextEncoder(tiny_checkpoint, max_length=8)
    vectors = encoder.encode(["cat", "dogs piano", ""])
    assert vectors.shape == (3, 8)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    assert encoder.token_ids(["dogs piano"]) == [[2, 6, 8, 7, 3]]


def test_checkpoint_prefix_path_loads_the_same_model(tiny_checkpoint):
    info = text.find_checkpoint(tiny_checkpoint / text.CHECKPOINT_PREFIX)
    assert info.directory == tiny_checkpoint
    assert info.hidden_size == 8
    assert info.do_lower_case is True


def test_cased_folder_name_turns_lower_casing_off(tiny_checkpoint):
    cased = tiny_checkpoint.parent / "cased_L-1_H-8"
    shutil.copytree(tiny_checkpoint, cased)
    assert text.find_checkpoint(cased).do_lower_case is False


def test_missing_checkpoint_raises(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        text.load_bert(tmp_path / "nowhere")


def test_checkpoint_of_wrong_type_raises():
    with pytest.raises(ParameterError, match="checkpoint=123"):
        text.load_bert(123)


def test_checkpoint_without_vocab_raises(tiny_checkpoint):
    (tiny_checkpoint / text.VOCAB_FILE).unlink()
    with pytest.raises(ModelError, match="has no vocab.txt"):
        text.load_bert(tiny_checkpoint)


def test_checkpoint_with_invalid_config_raises(tiny_checkpoint):
    (tiny_checkpoint / text.CONFIG_FILE).write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        text.load_bert(tiny_checkpoint)


def test_config_without_hidden_size_raises(tiny_checkpoint):
    config = dict(TINY_CONFIG)
    del config["hidden_size"]
    (tiny_checkpoint / text.CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(ModelError, match="hidden_size"):
        text.load_bert(tiny_checkpoint)


def test_vocab_that_does_not_match_config_raises(tiny_checkpoint):
    with open(tiny_checkpoint / text.VOCAB_FILE, "a", encoding="utf-8") as handle:
        handle.write("extra\n")
    with pytest.raises(ModelError, match="11 tokens but bert_config.json says vocab_size=10"):
        text.load_bert(tiny_checkpoint)


def test_vocab_and_config_that_do_not_match_the_weights_raise(tiny_checkpoint):
    config = dict(TINY_CONFIG, vocab_size=11)
    (tiny_checkpoint / text.CONFIG_FILE).write_text(json.dumps(config))
    with open(tiny_checkpoint / text.VOCAB_FILE, "a", encoding="utf-8") as handle:
        handle.write("extra\n")
    with pytest.raises(ModelError, match="does not match"):
        text.load_bert(tiny_checkpoint)


def test_vocab_without_special_tokens_raises(tiny_checkpoint):
    vocab = ["[PAD]", "[UNK]", "x", "y"] + TINY_VOCAB[4:]
    (tiny_checkpoint / text.VOCAB_FILE).write_text("\n".join(vocab) + "\n")
    with pytest.raises(ModelError, match=r"\[CLS\]"):
        text.load_bert(tiny_checkpoint)


def test_corrupt_checkpoint_index_raises(tiny_checkpoint):
    (tiny_checkpoint / "bert_model.ckpt.index").write_bytes(b"this is not a checkpoint")
    with pytest.raises(ModelError, match="corrupt"):
        text.load_bert(tiny_checkpoint)


def test_truncated_checkpoint_data_raises(tiny_checkpoint):
    data = next(tiny_checkpoint.glob("bert_model.ckpt.data-*"))
    data.write_bytes(data.read_bytes()[:100])
    with pytest.raises(ModelError, match="corrupt"):
        text.load_bert(tiny_checkpoint)


def test_checkpoint_missing_layer_variables_raises(tmp_path):
    variables = {k: v for k, v in tiny_variables(TINY_CONFIG).items() if "layer_0/output" not in k}
    folder = tmp_path / "partial"
    text.write_bert_checkpoint(folder, variables, config=TINY_CONFIG, vocab=TINY_VOCAB)
    with pytest.raises(ModelError, match="lacks .* variables"):
        text.load_bert(folder)


def test_folder_with_two_checkpoints_raises(tiny_checkpoint):
    (tiny_checkpoint / "checkpoint").unlink()
    shutil.copy(tiny_checkpoint / "bert_model.ckpt.index", tiny_checkpoint / "other.index")
    with pytest.raises(ModelError, match="exactly one checkpoint"):
        text.load_bert(tiny_checkpoint)


def test_write_bert_checkpoint_without_variables_raises(tmp_path):
    with pytest.raises(ParameterError, match="variables is empty"):
        text.write_bert_checkpoint(tmp_path / "x", {}, config=TINY_CONFIG, vocab=TINY_VOCAB)


# --------------------------------------------------------------------------- cached features

@pytest.fixture
def items() -> pd.DataFrame:
    return pd.DataFrame({"item_id": ["i0", "i1", "i2"],
                         "title_en": ["Cat piano", "Dog surfing", ""],
                         "description_en": ["a cat plays", "", "nothing"]})


def test_item_texts_joins_fields_and_skips_empty_parts(items):
    assert text.item_texts(items, fields=["title_en", "description_en"]) == \
        ["Cat piano. a cat plays", "Dog surfing", "nothing"]


def test_item_texts_unknown_field_raises(items):
    with pytest.raises(ParameterError, match="title_fr"):
        text.item_texts(items, fields=["title_fr"])


def test_encode_items_caches_and_reloads(items, tiny_checkpoint, tmp_path):
    encoder = text.BertTextEncoder(tiny_checkpoint, max_length=8)
    first = text.encode_items(items, encoder=encoder, data_dir=tmp_path, dataset_name="toy",
                              fields=["title_en"])
    files = list((tmp_path / "features" / "text" / "toy").glob("*.npz"))
    assert len(files) == 1

    def fail(*args, **kwargs):
        raise AssertionError("the cached vectors should have been used")

    encoder.encode = fail
    second = text.encode_items(items, encoder=encoder, data_dir=tmp_path, dataset_name="toy",
                               fields=["title_en"])
    np.testing.assert_array_equal(first, second)
    assert first.shape == (3, 8)


def test_encode_items_key_changes_with_fields_and_text(items, tiny_checkpoint, tmp_path):
    encoder = text.BertTextEncoder(tiny_checkpoint, max_length=8)
    text.encode_items(items, encoder=encoder, data_dir=tmp_path, dataset_name="toy",
                      fields=["title_en"])
    text.encode_items(items, encoder=encoder, data_dir=tmp_path, dataset_name="toy",
                      fields=["title_en", "description_en"])
    edited = items.assign(title_en=["Cat piano", "Dog skating", ""])
    text.encode_items(edited, encoder=encoder, data_dir=tmp_path, dataset_name="toy",
                      fields=["title_en"])
    assert len(list((tmp_path / "features" / "text" / "toy").glob("*.npz"))) == 3


def test_encode_items_without_item_ids_raises(items):
    with pytest.raises(ParameterError, match="item_id"):
        text.encode_items(items.drop(columns="item_id"))


def test_encode_items_empty_table_raises(items):
    with pytest.raises(DataError, match="empty"):
        text.encode_items(items.iloc[:0])


def test_encode_items_non_dataset_raises():
    with pytest.raises(ParameterError, match="items DataFrame"):
        text.encode_items(["a", "b"])


# --------------------------------------------------------------------------- LSTM

def test_word_vocabulary_ids_by_frequency():
    vocabulary = text.WordVocabulary(max_length=4).fit(["cat dog", "cat piano", "cat"])
    assert vocabulary.vocabulary_ == {"cat": 2, "dog": 3, "piano": 4}
    assert vocabulary.vocab_size_ == 5
    np.testing.assert_array_equal(vocabulary.transform(["piano cat unknown", ""]),
                                  [[4, 2, 1, 0], [0, 0, 0, 0]])


def test_word_vocabulary_cuts_long_texts():
    vocabulary = text.WordVocabulary(max_length=2).fit(["a b c"])
    assert vocabulary.transform(["c b a"]).tolist() == [[4, 3]]


def test_word_vocabulary_bad_max_length_raises():
    with pytest.raises(ParameterError, match="max_length=0"):
        text.WordVocabulary(max_length=0).fit(["a"])


def test_lstm_encoder_output_shape_and_padding_is_masked():
    mmrec_lib.set_seed(0)
    encoder = text.LstmTextEncoder(vocab_size=10, embedding_dim=4, units=3)
    padded = encoder(np.array([[5, 6, 0, 0]], dtype=np.int32)).numpy()
    exact = encoder(np.array([[5, 6]], dtype=np.int32)).numpy()
    assert padded.shape == (1, 6)
    np.testing.assert_allclose(padded, exact, atol=1e-6)


def test_lstm_encoder_projection_and_config_round_trip():
    encoder = text.LstmTextEncoder(vocab_size=10, units=3, bidirectional=False, output_dim=5)
    assert encoder(np.ones((2, 3), dtype=np.int32)).shape == (2, 5)
    clone = text.LstmTextEncoder.from_config(encoder.get_config())
    assert clone.get_config() == encoder.get_config()


def test_lstm_encoder_bad_vocab_size_raises():
    with pytest.raises(ParameterError, match="vocab_size=1"):
        text.LstmTextEncoder(vocab_size=1)


def test_lstm_encoder_bad_dropout_raises():
    with pytest.raises(ParameterError, match="dropout=1.5"):
        text.LstmTextEncoder(vocab_size=10, dropout=1.5)
