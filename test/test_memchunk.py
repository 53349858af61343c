"""MemChunk packing: whole items dropped, least important first, exact counts under the tokenizer."""
import pytest

from egomem_ros.memchunk import ApproxTokenCounter, SentencePieceTokenCounter, make_token_counter, pack_lines, render_user_profile


def test_pack_drops_whole_items_from_the_end():
    counter = ApproxTokenCounter()
    items = [("Facts", f"fact number {i} about something quite long") for i in range(40)]
    packed = pack_lines(["User: Emily"], items, 60, counter)
    assert packed.token_count <= 60 and counter.count(packed.text) == packed.token_count
    kept = [line for line in packed.text.splitlines() if line.startswith("- ")]
    assert kept == [f"- fact number {i} about something quite long" for i in range(len(kept))]  # most important kept
    assert packed.dropped == 40 - len(kept) > 0


def test_profile_priorities_and_empty(store):
    u = store.create_user("Emily")
    for i in range(30):
        store.add_fact(u.id, "summary", f"old conversation {i} about the weather and the garden")
    store.add_fact(u.id, "fact", "works as a nurse")
    store.add_fact(u.id, "preference", "loves tennis")
    packed = render_user_profile(store, u.id, 80, ApproxTokenCounter())
    assert "works as a nurse" in packed.text and "loves tennis" in packed.text and packed.token_count <= 80
    assert packed.dropped > 0
    assert render_user_profile(store, store.create_user(None).id, 512, ApproxTokenCounter()).text.startswith("User: unknown")


def test_sentencepiece_counter_on_a_tiny_model(tmp_path):
    spm = pytest.importorskip("sentencepiece")
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(["Emily works as a nurse and loves tennis.", "John plays tennis every Sunday.",
                                 "The robot remembers people and their friends."] * 50))
    spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(tmp_path / "tiny"), vocab_size=60,
                                   character_coverage=1.0, model_type="bpe")
    counter = make_token_counter("auto", str(tmp_path / "tiny.model"))
    assert isinstance(counter, SentencePieceTokenCounter) and counter.name == "sentencepiece:tiny.model"
    n = counter.count("Emily loves tennis")
    assert 3 <= n <= 18
    packed = pack_lines(["User: Emily"], [("Facts", "loves tennis")] * 20, 25, counter)
    assert counter.count(packed.text) == packed.token_count <= 25
    with pytest.raises(FileNotFoundError):
        make_token_counter("sentencepiece", str(tmp_path / "missing.model"))
