"""One validated configuration schema, shared by the `egomem` CLI and the ROS 2 nodes.

The YAML files in `config/` use the ROS 2 parameter layout (`/**: ros__parameters: ...`) so
`ros2 launch` can pass them straight to the nodes; `load_config` accepts that layout or a plain
mapping. Unknown keys and bad values raise `ConfigError` with the offending dotted path.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from platformdirs import user_data_dir
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .store.models import is_postgres_url, url_query_password
from .errors import EgomemError


class ConfigError(EgomemError, ValueError):
    """A configuration file or value that cannot be used."""


class _Section(BaseModel):
    # inf and NaN are never settings: `threshold: .inf` matched every face to someone, NaN turned a test off
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class StoreConfig(_Section):
    # Empty means the XDG data dir (see `default_db_path`).
    db_path: str = ""
    # postgresql://user@host/db?sslmode=verify-full: a server that several robots share (wins over db_path).
    # The password comes from the environment (PGPASSWORD, ~/.pgpass), never from this file.
    url: str = ""

    @field_validator("url")
    @classmethod
    def _no_password(cls, url: str) -> str:
        from urllib.parse import urlsplit

        if url and not is_postgres_url(url):
            raise ValueError("store.url must be a postgresql:// URL (a SQLite file goes in store.db_path)")
        if url and (urlsplit(url).password or url_query_password(url)):
            raise ValueError("store.url holds a password: put it in PGPASSWORD or ~/.pgpass, not in the config")
        return url


class FaceConfig(_Section):
    backend: Literal["dlib", "deepface"] = "dlib"
    # Empty/negative means the backend's calibrated default (dlib: 0.6 Euclidean, Facenet512: 0.3 cosine);
    # distances of both metrics are at most 2.
    threshold: float = Field(-1.0, le=2.0)
    # dlib HOG upsampling; 1 gave false faces on real frames here, so the default is 0.
    upsample: int = Field(0, ge=0, le=3)
    # several faces in view: speaker = the one whose person the voice names (else the largest) | largest | central
    multi_face_policy: Literal["speaker", "largest", "central"] = "speaker"
    # Frames larger than this (longest side, px) are downscaled before detection.
    max_image_side: int = Field(1280, ge=64)
    # Run the face model in a worker process so it does not hold the GIL against the voice model.
    worker_process: bool = True


class VoiceConfig(_Section):
    backend: Literal["resemblyzer", "wavlm", "speechbrain"] = "resemblyzer"
    # Production checkpoint (hub name or local dir) for wavlm/speechbrain; empty = the backend's default.
    model: str = ""
    use_vad: bool = True
    snorm: bool = True
    cohort_top_n: int = Field(200, ge=1)
    # Below this many cohort embeddings s-norm statistics are noise: raw cosine is used instead.
    min_cohort: int = Field(20, ge=2)
    # Optional .npy file (N x dim) of voices of people never enrolled, added to the imposter cohort.
    cohort_path: str = ""
    # Empty/negative means the backend's EER-calibrated default.
    threshold: float = -1.0
    min_voiced_s: float = Field(0.5, ge=0.0)


class IdentityConfig(_Section):
    poll_period_s: float = Field(2.0, ge=0.1, le=60.0)   # faster than 10 Hz only burns CPU
    window_s: float = Field(2.0, gt=0.0, le=60.0)
    learn_new_users: bool = True
    # Polls that must agree before the current user switches (1 = no hysteresis).
    switch_after_polls: int = Field(2, ge=1)
    # A poll at least this confident switches at once (the profile reaches the dialog within one poll).
    instant_switch_confidence: float = Field(0.9, ge=0.5, le=1.0)
    face_weight: float = Field(0.6, ge=0.0, le=1.0)
    exact_search_max_keys: int = Field(100_000, ge=1)
    # Above exact_search_max_keys: the HNSW graph holds keys PCA-projected to ann_dim (0 = all dims)
    # and its ann_candidates nearest are re-ranked exactly (docs: retrieval/gallery.py). Defaults: the
    # point measured at 10^6 voice keys (bench/bench_match.py): 3.9 ms, recall@1 0.991.
    ann_dim: int = Field(96, ge=0)
    ann_candidates: int = Field(64, ge=1)
    ann_m: int = Field(48, ge=4)      # HNSW graph degree (build time and memory grow with it)
    ann_ef: int = Field(500, ge=1)    # HNSW query breadth: recall vs latency
    # torch intra-op threads for the voice model; 0 = all cores but one, which dlib's face model uses
    # at the same time (face and voice are scored in parallel).
    torch_threads: int = Field(0, ge=0)
    face: FaceConfig = FaceConfig()
    voice: VoiceConfig = VoiceConfig()


class MemChunkConfig(_Section):
    l1_max_tokens: int = Field(512, ge=16)
    l2_max_tokens: int = Field(256, ge=16)
    # "auto": moshi's sentencepiece model when `tokenizer_path` exists, else the approximate counter.
    tokenizer: Literal["auto", "approx", "sentencepiece"] = "auto"
    tokenizer_path: str = ""


class RetrievalConfig(_Section):
    hop_limit: int = Field(1, ge=1, le=4)
    top_k: int = Field(5, ge=1, le=50)
    rerank_backend: Literal["lexical", "minilm", "bge", "none"] = "minilm"
    # dense backends: "auto" is bf16 where the CPU has bf16 instructions, else fp32 (docs/retrieval.md)
    rerank_precision: Literal["auto", "fp32", "bf16", "int8"] = "auto"
    bge_model: str = "BAAI/bge-small-en-v1.5"


class LLMSection(_Section):
    base_url: str = "http://127.0.0.1:8000/v1"
    model: str = "deepseek-chat"
    # Name of the environment variable holding the API key (the key itself never goes in a file).
    api_key_env: str = "EGOMEM_LLM_API_KEY"
    timeout_s: float = Field(30.0, gt=0)
    retries: int = Field(3, ge=0)


class MemoryConfig(_Section):
    consolidation_period_s: float = Field(600.0, ge=1.0)
    buffer_s: float = Field(900.0, gt=10)
    segmenter: Literal["baseline", "tagger"] = "baseline"
    # tagger: a stream with no robot voice on the speak channel goes to this segmenter instead (said once)
    segmenter_fallback: Literal["baseline", "none"] = "baseline"
    trigger_checkpoint: str = ""
    # tagger: overrides the checkpoint's voice contrast (tuned on espeak-ng voices; real speakers need more).
    # Negative: the checkpoint's own. (A number, not null: ROS 2 parameters have no null.)
    trigger_voice_split_contrast: float = Field(-1.0, ge=-1.0, lt=2)
    # A session whose end is closer than this to the buffer's end may still be going on: wait.
    max_gap_s: float = Field(2.0, gt=0)
    # A session ends when no voice was heard for this long, or when the person in view changes; it is
    # consolidated then (consolidation_period_s is the upper bound for a session that goes on and on).
    session_end_s: float = Field(5.0, gt=0)
    # Two known people taking turns: a session is also cut where a turn's voice is this much nearer
    # another known person's voice keys (cosine) than anyone else's. 0: no such cuts.
    known_voice_margin: float = Field(0.05, ge=0, lt=1)
    # Transcribes sessions when no transcript topic gives the words (a topic, when there is one, wins).
    asr: Literal["whisper", "pocketsphinx", "none"] = "whisper"
    # whisper: "" = the bundled tiny.en; a size (small.en, large-v3) or a local CTranslate2 model directory
    asr_model: str = ""
    # Processes transcribing a session's user turns in parallel (pocketsphinx only; 1: in this process).
    asr_workers: int = Field(2, ge=1)
    # rules: offline (spaCy's parser + patterns, no LLM); llm: memory.llm
    extractor: Literal["rules", "llm"] = "rules"
    # The offline extractor keeps at most this many items per 100 sentences a person says, the most
    # informative first: memory grows much more slowly than talk.
    max_items_per_100_sentences: float = Field(30.0, gt=0, le=200)
    update_agent: Literal["rules", "llm"] = "rules"
    # Sessions waiting to be written; empty: next to the database (`<db>.sessions/`).
    spool_dir: str = ""
    llm: LLMSection = LLMSection()


class DialogConfig(_Section):
    # external: publish the MemChunks as a system prompt for the robot's own dialog stack.
    # cascaded: transcript in -> OpenAI-compatible chat LLM (dialog.llm) -> text out.
    # moshi: full-duplex speech model with pinned MemChunk regions (the L1/L2 sizes are
    #        memchunk.l1_max_tokens / l2_max_tokens steps).
    mode: Literal["external", "cascaded", "moshi"] = "external"
    device: Literal["cpu", "cuda"] = "cpu"
    retrieve_service: str = "/memory_node/retrieve_text"
    retrieve_timeout_s: float = Field(0.5, gt=0)
    # moshi: a Hugging Face repo id (kyutai/moshiko-pytorch-bf16) or a local checkpoint directory.
    checkpoint: str = ""
    dtype: Literal["auto", "fp32", "bf16"] = "auto"  # auto: bf16 on cuda, fp32 on cpu
    use_sampling: bool = True
    temp: float = Field(0.8, gt=0)
    temp_text: float = Field(0.7, gt=0)
    top_k: int = Field(250, ge=1)
    top_k_text: int = Field(25, ge=1)
    # Steps after which the pinned chunks stop moving away (-1: the model's context - 1).
    pinned_horizon: int = Field(-1, ge=-1)
    graph_prefill: bool = True
    queue_frames: int = Field(4, ge=1)  # 80 ms frames waiting for the model before the oldest is dropped
    # cascaded: the chat model, and whether it gets a retrieve_memory tool (else the <retr> text protocol)
    use_tools: bool = True
    llm: LLMSection = LLMSection()


class EgomemConfig(_Section):
    store: StoreConfig = StoreConfig()
    identity: IdentityConfig = IdentityConfig()
    memchunk: MemChunkConfig = MemChunkConfig()
    retrieval: RetrievalConfig = RetrievalConfig()
    memory: MemoryConfig = MemoryConfig()
    dialog: DialogConfig = DialogConfig()


def default_db_path() -> Path:
    """Where the memory lives when nothing is configured: `$XDG_DATA_HOME/egomem/memory.db`."""
    return Path(user_data_dir("egomem", appauthor=False)) / "memory.db"


def resolve_db(config: EgomemConfig, override: str | Path | None = None) -> str | Path:
    """What a store opens: a postgresql:// URL (`--db` or `store.url`) or a SQLite file path."""
    if override and is_postgres_url(override):
        return str(override)
    if not override and config.store.url:
        return config.store.url
    return resolve_db_path(config, override)


def resolve_db_path(config: EgomemConfig, override: str | Path | None = None) -> Path:
    if override:
        return Path(override).expanduser()
    if config.store.db_path:
        return Path(config.store.db_path).expanduser()
    path = default_db_path()
    path.parent.mkdir(parents=True, exist_ok=True)   # the default place is ours to make (a fresh robot has none)
    return path


def _unwrap_ros_layout(data: dict[str, Any]) -> dict[str, Any]:
    """Merge every `<node>: ros__parameters:` block (`/**` first) into one plain mapping."""
    if not any(isinstance(v, dict) and "ros__parameters" in v for v in data.values()):
        return data
    merged: dict[str, Any] = {}
    for node in sorted(data, key=lambda k: k != "/**"):
        block = data[node]
        if not isinstance(block, dict) or set(block) != {"ros__parameters"}:
            raise ConfigError(f"{node!r}: expected only 'ros__parameters' under a node name")
        params = block["ros__parameters"] or {}
        if not isinstance(params, dict):
            raise ConfigError(f"{node!r}: ros__parameters must be a mapping of parameter names, "
                              f"not a {type(params).__name__}")
        _deep_merge(merged, params)
    return merged


def _deep_merge(into: dict[str, Any], new: dict[str, Any]) -> None:
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _deep_merge(into[key], value)
        else:
            into[key] = value


def format_validation_error(err: ValidationError, what: str = "egomem configuration") -> str:
    lines = []
    for e in err.errors():
        path = ".".join(str(p) for p in e["loc"]) or "<root>"
        lines.append(f"  {path}: {e['msg']}")
    return f"invalid {what}:\n" + "\n".join(lines)


def config_from_mapping(data: dict[str, Any] | None) -> EgomemConfig:
    data = _unwrap_ros_layout(data or {})
    try:
        return EgomemConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err)) from None


def load_config(path: str | Path | None = None) -> EgomemConfig:
    """Load and validate a YAML file; None gives the defaults."""
    if path is None:
        return EgomemConfig()
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not a text file (a config is UTF-8 YAML)") from None
    except yaml.YAMLError as err:   # one line: what is wrong, and where
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"{p}: not valid YAML: {getattr(err, 'problem', None) or err}{where}") from None
    except RecursionError:
        raise ConfigError(f"{p}: nested too deeply to be a config") from None
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{p}: top level must be a mapping")
    try:
        return config_from_mapping(data)
    except RecursionError:
        raise ConfigError(f"{p}: nested too deeply to be a config") from None


def flatten(config: EgomemConfig) -> dict[str, Any]:
    """Dotted parameter names -> values, as ROS 2 nodes declare them (`identity.face.backend`)."""
    out: dict[str, Any] = {}

    def walk(prefix: str, model: BaseModel) -> None:
        for name in type(model).model_fields:
            value = getattr(model, name)
            key = f"{prefix}{name}"
            if isinstance(value, BaseModel):
                walk(key + ".", value)
            else:
                out[key] = value

    walk("", config)
    return out


def unflatten(params: dict[str, Any]) -> EgomemConfig:
    """Inverse of `flatten`: what a node read from its parameters, validated by the same schema."""
    nested: dict[str, Any] = {}
    for dotted, value in params.items():
        node = nested
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return config_from_mapping(nested)
