"""sllmr-tf: Selective LLM-Guided Regularization (S-LLMR) for TensorFlow recommenders."""
from setuptools import find_packages, setup

# Versions are the ones the test suite runs against; see BUILD_NOTES.md for why each is here.
INSTALL_REQUIRES = [
    "tensorflow==2.21.0",
    "tf-keras==2.21.0",
    "tensorboard==2.21.0",  # tf.summary and the Keras TensorBoard callback; TF 2.21 no longer pulls it in
    "tensorflow-recommenders==0.7.7",
    "tensorflow-datasets==4.9.10",
    "keras-hub==0.32.0",
    "safetensors==0.8.0",  # keras-hub loads the MiniLM weights from .safetensors
    "absl-py==2.5.1",
    "numpy>=2.0,<3",
    "pandas==3.1.1",
    "pyarrow==25.0.1",  # apache-beam 2.77 needs pyarrow < 26
    "apache-beam==2.77.0",  # sllmr-prepare's pipeline and the TFDS builders' generation
    "scipy>=1.14,<2",
    "matplotlib==3.11.2",
    "importlib_resources>=6",  # tensorflow-datasets imports it; etils no longer pulls it in
    "tensorflow-serving-api==2.21.0",  # the PredictionLog protos of the export's warmup requests
]

setup(
    name="sllmr-tf",
    version="0.1.0",
    description="Selective LLM-Guided Regularization for TensorFlow recommendation models",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=["sllmr_tf", "sllmr_tf.*"]),
    install_requires=INSTALL_REQUIRES,
    extras_require={
        "test": ["pytest==9.2.0", "pytest-xdist==3.8.0"],
        "llm": ["llama-cpp-python[server]==0.3.36"],
        # the yardstick of sllmr_tf/bench/backbones_vs_deepctr.py; never imported by the package
        "bench": ["deepctr==0.9.4"],
    },
    entry_points={
        "console_scripts": [
            "sllmr-prepare=sllmr_tf.bins.prepare:run",
            "sllmr-score=sllmr_tf.bins.score:run",
            "sllmr-train=sllmr_tf.bins.train:run",
            "sllmr-eval=sllmr_tf.bins.eval:run",
            "sllmr-experiment=sllmr_tf.bins.experiment:run",
            "sllmr-export=sllmr_tf.bins.export:run",
            "sllmr-main=sllmr_tf.bins.main:run",
        ],
    },
)
