"""make-data: transcripts, token streams, shards (tiny random Mimi; word tones or espeak-ng as TTS)."""
from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest

from egomem_ros.dialog import moshi_checkpoint as mc
from egomem_ros.dialog.pinned_memory import RegionLayout
from egomem_ros.tools.finetune.chunks import ChunkTexts
from egomem_ros.tools.finetune.dataset import ChunkEncoder, SampleSet
from egomem_ros.tools.finetune.schema import Dialog, Profile, Transcripts, Turn, clean_transcripts, load_transcripts
from egomem_ros.tools.finetune.shards import MANIFEST, iter_streams
from egomem_ros.tools.finetune.streams import StreamConfig, encode_words, make_streams, word_tones_tts
from egomem_ros.tools.finetune.transcripts import TEMPLATE_NOTE, make_transcripts
from egomem_ros.memchunk import LEVEL1, SentencePieceTokenCounter, truncate_lines
from egomem_ros.retrieval.level2 import NOTHING_FOUND
from egomem_ros.retrieval.retr_protocol import RetrStreamParser

LAYOUT = RegionLayout(l1_steps=128, l2_steps=64)


@pytest.fixture(scope="module")
def data():
    return make_transcripts(n_profiles=6, n_level1=4, n_level2=4, seed=3)


@pytest.fixture(scope="module")
def models(tmp_path_factory, data):
    corpus = [t.user + " " + t.robot for d in data.dialogs for t in d.turns] + list(mc._TINY_CORPUS)
    path = mc.write_tiny_checkpoint(tmp_path_factory.mktemp("ck"), lm_cfg=mc.lm_config(text_card=400),
                                    vocab_size=400, corpus=corpus)
    return mc.load_models(path)


@pytest.fixture(scope="module")
def streams(tmp_path_factory, data, models):
    out = tmp_path_factory.mktemp("streams")
    make_streams(data, models, out, StreamConfig(max_steps=1200, layout=LAYOUT), per_shard=2, tts_fn=word_tones_tts)
    return out


def test_template_transcripts_are_annotated_and_say_they_are_templates(data):
    assert data.backend == "templates" and data.note == TEMPLATE_NOTE
    assert {d.level for d in data.dialogs} == {1, 2} and len(data.graphs) == 6
    queried = [t for d in data.dialogs if d.level == 2 for t in d.turns if t.has_query]
    assert queried and all(t.answer_span for t in queried)
    for d in data.dialogs:
        assert 3 <= len(d.turns) <= 5
        for t in d.turns:
            if t.answer_span:
                fact = t.robot[t.answer_span[0]:t.answer_span[1]]
                assert fact and fact not in t.user  # only the memory can supply it


def test_missing_turns_unknown_users_and_bad_spans_are_dropped(caplog):
    raw = Transcripts(profiles=[Profile(id="a", name="Ann")], dialogs=[
        Dialog(id="d1", level=1, user="a", turns=[Turn(user="Hi", robot=""), Turn(user="Who am I?", robot="Ann.",
                                                                                 answer_span=(0, 99))]),
        Dialog(id="d2", level=1, user="a", turns=[Turn(user="", robot="hello")]),
        Dialog(id="d3", level=1, user="ghost", turns=[Turn(user="x", robot="y")])])
    with caplog.at_level(logging.WARNING):
        clean = clean_transcripts(raw)
    assert [d.id for d in clean.dialogs] == ["d1"]
    assert len(clean.dialogs[0].turns) == 1 and clean.dialogs[0].turns[0].answer_span is None
    assert "missing the robot's words" in caplog.text and "unknown user" in caplog.text


def test_load_rejects_invalid_files(tmp_path):
    bad = tmp_path / "t.json"
    bad.write_text(json.dumps({"dialogs": [{"id": "d", "level": 7, "user": "a", "turns": []}]}))
    with pytest.raises(ValueError, match="not a valid transcript file"):
        load_transcripts(bad)
    with pytest.raises(FileNotFoundError):
        load_transcripts(tmp_path / "missing.json")


def test_empty_graph_gives_the_nothing_found_chunk(models):
    data = Transcripts(profiles=[Profile(id="a", name="Ann")])
    counter = SentencePieceTokenCounter(models.info.tokenizer, processor=models.tokenizer)
    chunks = ChunkTexts(data, counter, LAYOUT)
    assert NOTHING_FOUND in chunks.level2("a", Turn(user="q", robot="r", relation_query=["mother"]))
    assert chunks.level2("a", Turn(user="q", robot="r")) == ""


def test_long_profile_is_cut_like_the_runtime_cuts_it(models):
    counter = SentencePieceTokenCounter(models.info.tokenizer, processor=models.tokenizer)
    text = "User: Ann (id a)\nFacts:\n" + "\n".join(f"- fact number {i} about hiking" for i in range(200))
    ids = ChunkEncoder(models.tokenizer, counter, LAYOUT)(LEVEL1, text)
    runtime = truncate_lines(text, LAYOUT.l1_steps, counter)  # DialogEngine.set_memchunk's cut
    assert ids == models.tokenizer.encode(runtime.text) and 0 < len(ids) <= LAYOUT.l1_steps
    assert runtime.dropped > 0


def test_streams_layout(streams, models):
    manifest = json.loads((streams / MANIFEST).read_text())
    assert manifest["layout"] == {"l1_steps": 128, "l2_steps": 64} and manifest["transcripts_backend"] == "templates"
    all_streams = list(iter_streams(streams))
    assert all_streams and len(manifest["shards"]) == -(-len(all_streams) // 2)
    tok = models.tokenizer
    for stream in all_streams:
        T = stream.meta["steps"]
        assert stream.codes.shape == (17, T) and T <= 1200 - LAYOUT.total and stream.labels.shape == (T,)
        assert (stream.codes[1:] >= 0).all() and (stream.codes[1:] < 64).all()
        for d in stream.meta["dialogs"]:
            assert d["l1"].startswith("User: ")
            for turn in d["turns"]:
                ids, _ = encode_words(tok, turn["robot_text"])
                start = turn["text_start"]
                assert turn["audio_step"] - start == 2  # natural monologue: text 2 steps before the audio
                n = turn["response_ids"]
                assert stream.codes[0, start:start + n].tolist() == ids[:n]
                if turn["has_query"]:
                    a, b = turn["query"]
                    text = tok.decode(stream.codes[0, a:b].tolist())
                    assert RetrStreamParser().feed(text), text  # the real <retr> parser reads it back
                    assert b <= start and turn["l2"]  # query words first, then the answer; L2 refilled
                else:
                    assert turn["l2"] == turn["l2_before"]  # no query: L2 stays as it was
        assert set(np.unique(stream.labels)) <= {0, 1, 2, 3}


def test_corrupt_shard_is_skipped_and_resume_builds_nothing_twice(streams, data, models, tmp_path, caplog):
    copy = tmp_path / "copy"
    shutil.copytree(streams, copy)
    manifest = json.loads((copy / MANIFEST).read_text())
    first = copy / manifest["shards"][0]["file"]
    first.write_bytes(first.read_bytes()[:-10] + b"0123456789")
    with caplog.at_level(logging.WARNING):
        kept = list(iter_streams(copy))
    assert "fails its checksum" in caplog.text
    assert len(kept) == sum(len(s["streams"]) for s in manifest["shards"][1:])
    again = make_streams(data, models, copy, StreamConfig(max_steps=1200, layout=LAYOUT), per_shard=2,
                         tts_fn=word_tones_tts)
    assert len(again["shards"]) == len(manifest["shards"])  # every stream was already there


def test_sample_set_batches(streams, models):
    samples = SampleSet([streams])
    kinds = {s.kind for s in samples.samples}
    assert kinds == {"l1", "l2_query", "l2_response"}
    counter = SentencePieceTokenCounter(models.info.tokenizer, processor=models.tokenizer)
    batch = samples.batch([0, 1, 2], ChunkEncoder(models.tokenizer, counter, LAYOUT))
    assert batch.codes.shape[:2] == (3, 17) and batch.mask.shape == (3, batch.codes.shape[2])
    for b, s in enumerate(batch.samples):
        end = max(e for _, e in s.spans)
        assert batch.mask[b].nonzero().max() < end and (batch.codes[b, :, end:] == -1).all()


def test_llm_backend_writes_schema_valid_dialogs():
    import httpx

    from egomem_ros.memory.llm import ChatClient, LLMConfig

    answer = {"turns": [{"user": "Where do I live?", "robot": "You live in Oslo.", "relation_query": [],
                         "keyword_query": [], "answer_span": [12, 16]}]}
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(200, json={"choices": [{"message": {"role": "assistant", "content": json.dumps(answer)}}]})

    client = ChatClient(LLMConfig(base_url="http://llm.test/v1", model="deepseek-chat", retries=0),
                        transport=httpx.MockTransport(handler))
    data = make_transcripts(n_profiles=2, n_level1=1, n_level2=1, client=client)
    assert data.backend == "llm:deepseek-chat" and len(data.dialogs) == 2
    assert data.dialogs[0].turns[0].robot == "You live in Oslo." and data.dialogs[0].turns[0].answer_span == (12, 16)
    assert "Level-2" in seen[1]["messages"][1]["content"] and "Graph" in seen[1]["messages"][1]["content"]
