"""Running a Beam pipeline where `RunnerConfig` says: on this machine, or on a cluster runner.

The local runner is Beam's FnApiRunner, named explicitly: Beam 2.77's
`DirectRunner` first tries the Prism runner, which downloads its binary from
GitHub at run time (nothing may download at run time). With
`direct_num_workers` = 1 the pipeline runs in this process; otherwise in that
many worker processes (0: one per core), each started as `beam_worker`, Beam's
SDK harness without its start-up chatter. DataflowRunner, FlinkRunner,
SparkRunner and PortableRunner get the pipeline options given after `--`.
"""
from __future__ import annotations

import logging
import shlex
import sys
from typing import Callable

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.portability.api import beam_provision_api_pb2
from apache_beam.runners.portability.fn_api_runner import fn_runner
from apache_beam.runners.portability.portable_runner import JobServiceHandle
from apache_beam.transforms import environments

from sllmr_tf import tensorflow_logs_wanted
from sllmr_tf.data.config import RunnerConfig
from sllmr_tf.errors import ConfigError

# Set through RunnerConfig, never as pipeline options.
_OWN_OPTIONS = ("runner", "direct_num_workers", "direct_running_mode")
_WORKER_COMMAND = f"{shlex.quote(sys.executable)} -m sllmr_tf.data.beam_worker"


class _NotInMemoryWarning(logging.Filter):
    """FnApiRunner warns that several workers need another running mode; ours start as
    subprocesses through their environment instead, so the warning does not apply."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "direct_running_mode should be" not in record.getMessage()


logging.getLogger(fn_runner.__name__).addFilter(_NotInMemoryWarning())


def run(build: Callable[[beam.Pipeline], None], config: RunnerConfig) -> None:
    """Build a pipeline with `build` and run it to completion on the configured runner.

    Args:
        build: adds the pipeline's transforms.
        config: which runner, and its options.

    Raises:
        ConfigError: a pipeline option Beam does not know, or one that is a flag of ours.
    """
    options = pipeline_options(config)
    with beam.Pipeline(runner=runner(config, options), options=options) as pipeline:
        build(pipeline)


def pipeline_options(config: RunnerConfig) -> PipelineOptions:
    """The Beam options of `config`: its pipeline args, checked, plus the local runner's workers."""
    config.validate()
    positional = [a for a in config.pipeline_args if not a.startswith("--")]
    if positional:
        raise ConfigError(f"pipeline options are --name=value, got {' '.join(positional)}")
    given = PipelineOptions(flags=list(config.pipeline_args)).get_all_options(retain_unknown_options=True)
    known = PipelineOptions(flags=[]).get_all_options()
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ConfigError(f"unknown Beam pipeline option(s) {', '.join('--' + u for u in unknown)}")
    own = [name for name in _OWN_OPTIONS if any(a.lstrip("-").split("=")[0] == name for a in config.pipeline_args)]
    if own:
        raise ConfigError(f"{', '.join('--' + o for o in own)}: a flag of ours; give it before --, not after")
    extra = {"pipeline_type_check": False}  # our transforms carry no type hints to check
    if config.runner == "local":
        extra.update(direct_num_workers=config.direct_num_workers,
                     default_sdk_harness_log_level="INFO" if tensorflow_logs_wanted() else "ERROR")
    return PipelineOptions(flags=list(config.pipeline_args), **extra)


def runner(config: RunnerConfig, options: PipelineOptions):
    """The runner object (local) or name (cluster runners) for `beam.Pipeline`."""
    if config.runner != "local":
        return config.runner
    provision = fn_runner.ExtendedProvisionInfo(beam_provision_api_pb2.ProvisionInfo(
        pipeline_options=JobServiceHandle.encode_pipeline_options(options.get_all_options())))
    workers = None
    if config.direct_num_workers != 1:
        workers = environments.SubprocessSDKEnvironment.from_command_string(_WORKER_COMMAND)
    return fn_runner.FnApiRunner(default_environment=workers, provision_info=provision)


def describe(config: RunnerConfig) -> str:
    """Where the pipeline runs, in words, for the progress log."""
    if config.runner != "local":
        return f"runner {config.runner}"
    if config.direct_num_workers == 1:
        return "local runner, in this process"
    workers = "one per core" if config.direct_num_workers == 0 else str(config.direct_num_workers)
    return f"local runner, {workers} worker processes"
