"""A worker process of the local Beam runner: Beam's SDK harness, imported through sllmr_tf.

Importing the package first quiets TensorFlow's and Beam's import-time output
(sllmr_tf/__init__.py); without it every worker prints Beam's BigQuery
warning and then, through the logging.basicConfig that warning triggers, its
whole start-up log. `beam_runner` starts workers with this module.
"""
import sys

import sllmr_tf  # noqa: F401  (quiet imports; must come before apache_beam)
from apache_beam.runners.worker import sdk_worker_main

if __name__ == "__main__":
    sdk_worker_main.main(sys.argv)
