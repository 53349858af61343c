"""Tooling, kept apart from what the robot runs: data generation (`datagen`), evaluation (`eval`), the
dialog model's fine-tuning (`finetune`) and the Level-2 benchmark format (`text_bench`). The CLI, `bench/`
and the tests use it; the nodes and `egomem replay` import none of it (test/test_rooms.py)."""
