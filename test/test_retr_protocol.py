import logging

import pytest

from egomem_ros.retrieval.retr_protocol import RetrQuery, RetrStreamParser, parse_block

STREAM = "Let me check. <retr>\ncolleague, boss\ntennis, sport<answer> Yes, John plays tennis."


@pytest.mark.parametrize("chunking", [1, 2, 3, 7, len(STREAM)])
def test_fires_once_whatever_the_chunking(chunking):
    p = RetrStreamParser()
    found = []
    for i in range(0, len(STREAM), chunking):
        found += p.feed(STREAM[i:i + chunking])
    assert found == [RetrQuery(("colleague", "boss"), ("tennis", "sport"))]


def test_empty_groups():
    p = RetrStreamParser()
    assert p.feed("<retr>\n\ntennis<answer>") == [RetrQuery((), ("tennis",))]
    assert p.feed("<retr>\nmother\n<answer>") == [RetrQuery(("mother",), ())]
    assert p.feed("<retr>\n\n<answer>")[0].empty


def test_two_queries_in_one_piece_and_bytes():
    p = RetrStreamParser()
    got = p.feed("<retr>\na\nb<answer>x<retr>\nc\nd<answer>")
    assert [q.relation_query for q in got] == [("a",), ("c",)]
    assert p.feed("<retr>\nmüm\n<answer>".encode()) == [RetrQuery(("müm",), ())]
    assert p.feed(b"\xff\xfe<retr>\nx\ny<answer>") == [RetrQuery(("x",), ("y",))]


def test_malformed_blocks_are_dropped_with_a_log(caplog):
    p = RetrStreamParser(max_block_chars=64)
    with caplog.at_level(logging.WARNING):
        assert p.feed("<retr>colleague\ntennis<answer>") == []          # no newline after <retr>
        assert p.feed("<retr>\na\nb\nc\nd<answer>") == []              # too many groups
        assert p.feed("<retr>\na\n" + "x" * 100) == []                 # never closes
        assert p.feed("<retr>\na\nb<retr>\nc\nd<answer>") == [RetrQuery(("c",), ("d",))]  # restart wins
    assert p.dropped == 4
    assert "malformed <retr>" in caplog.text
    assert p.feed("<retr>\nok\nfine<answer>") == [RetrQuery(("ok",), ("fine",))]  # recovered


def test_never_raises():
    p = RetrStreamParser()
    for junk in (None, "", 123, object(), "<answer><answer>", "<ret", "r>\n\n<answer>"):
        p.feed(junk)  # type: ignore[arg-type]


def test_parse_block_tolerates_trailing_newline():
    assert parse_block("\ncolleague\ntennis\n") == RetrQuery(("colleague",), ("tennis",))
    assert parse_block("colleague\ntennis") is None


def test_spoken_text_keeps_what_the_robot_said_without_its_queries():
    from egomem_ros.retrieval.retr_protocol import spoken_text

    assert spoken_text("Let me think. <retr>\ncolleague\ntennis<answer> ") == "Let me think."
    assert spoken_text("a <retr>\n\n<answer> b <retr>\nq\nr<answer> c") == "a b c"
    assert spoken_text("So <retr>\ncolleague") == "So"                    # its <answer> comes in the next message
    assert spoken_text("colleague\ntennis<answer> Sarah plays.") == "Sarah plays."   # its <retr> came before
    assert spoken_text("Hello there") == "Hello there"
