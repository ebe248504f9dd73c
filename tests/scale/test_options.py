"""Ray options: flags, builder args, and the Serve deployment settings they make (no cluster needed)."""

from __future__ import annotations

import pytest

from voxserve.cli import build_parser
from voxserve.scale.options import (
    RayOptions,
    deployment_options,
    forwarded_env,
    parse_builder_args,
)
from voxserve.server.config import ConfigError, ServerConfig


def test_serve_ray_flags_reach_ray_options_and_leave_server_config_alone():
    args = build_parser().parse_args(
        [
            "serve",
            "--ray",
            "--replicas",
            "2",
            "--max-replicas",
            "6",
            "--num-gpus",
            "0.5",
            "--target-ongoing",
            "40",
            "--device",
            "cuda",
            "--port",
            "9000",
        ]
    )
    assert args.ray is True
    options = RayOptions.from_args(args)
    assert (options.replicas, options.max_replicas, options.num_gpus, options.target_ongoing) == (
        2,
        6,
        0.5,
        40,
    )
    config = ServerConfig.from_args(args)
    assert (config.port, config.device) == (9000, "cuda")
    plain = build_parser().parse_args(["serve"])
    assert plain.ray is False and RayOptions.from_args(plain) == RayOptions()


def test_fixed_replicas_on_cpu():
    d = deployment_options(ServerConfig(max_queue=32), RayOptions(replicas=3))
    assert d["num_replicas"] == 3 and "autoscaling_config" not in d
    assert d["ray_actor_options"] == {"num_cpus": 1.0, "num_gpus": 0.0}
    assert d["max_ongoing_requests"] == 32  # voxserve's own queue bound decides, not Ray's default
    assert d["max_queued_requests"] == 32 * 3
    assert d["graceful_shutdown_timeout_s"] == ServerConfig().drain_timeout_s


def test_autoscaling_on_requests_in_flight_with_one_gpu_each():
    config = ServerConfig(device="cuda", backend="cuda", max_queue=200, drain_timeout_s=45)
    d = deployment_options(
        config,
        RayOptions(replicas=2, max_replicas=8, downscale_delay_s=120),
        env={"VOXSERVE_VOICE_STORE": "redis://r/0"},
    )
    assert "num_replicas" not in d
    assert d["autoscaling_config"] == {
        "min_replicas": 2,
        "initial_replicas": 2,
        "max_replicas": 8,
        "target_ongoing_requests": 100.0,
        "downscale_delay_s": 120.0,
    }
    assert d["ray_actor_options"]["num_gpus"] == 1.0
    assert d["ray_actor_options"]["runtime_env"] == {"env_vars": {"VOXSERVE_VOICE_STORE": "redis://r/0"}}
    assert d["graceful_shutdown_timeout_s"] == 45.0


def test_deployment_settings_are_accepted_by_ray():
    from ray.serve.config import AutoscalingConfig
    from ray.serve.schema import DeploymentSchema

    d = deployment_options(ServerConfig(device="cuda"), RayOptions(replicas=1, max_replicas=4, num_gpus=0.5))
    AutoscalingConfig(**d["autoscaling_config"])
    fields = {k: v for k, v in d.items() if k != "ray_actor_options"}
    DeploymentSchema(**fields, ray_actor_options=d["ray_actor_options"])


@pytest.mark.parametrize(
    ("config", "options", "flag"),
    [
        (ServerConfig(device="cuda:1"), RayOptions(), "--device"),
        (ServerConfig(device="cuda"), RayOptions(num_gpus=0), "--num-gpus"),
    ],
)
def test_device_settings_that_cannot_work_under_ray(config, options, flag):
    with pytest.raises(ConfigError, match=flag):
        deployment_options(config, options)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"replicas": 0}, "replicas"),
        ({"replicas": 3, "max_replicas": 2}, "max_replicas"),
        ({"num_gpus": -1}, "num_gpus"),
        ({"target_ongoing": 0}, "target_ongoing"),
        ({"max_ongoing": 0}, "max_ongoing"),
        ({"engine_factory": "no_colon"}, "engine_factory"),
    ],
)
def test_bad_ray_options_name_the_field(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        RayOptions(**kwargs)


def test_builder_args_from_serve_run_strings_and_yaml_values(monkeypatch):
    config, options = parse_builder_args(
        {
            "voice": "baker",
            "max-queue": "12",
            "ui": "false",
            "preload": "a,b",
            "deadline_s": "none",
            "replicas": "2",
            "max_replicas": 5,
            "num_gpus": "0",
        }
    )
    assert (config.max_queue, config.ui, config.preload, config.deadline_s) == (12, False, ("a", "b"), None)
    assert (options.replicas, options.max_replicas, options.num_gpus) == (2, 5, 0.0)
    monkeypatch.setenv("CACHE_URL", "redis://secret@r:6379/1")
    config, _ = parse_builder_args({"cache": "env:CACHE_URL"})
    assert config.cache == "redis://secret@r:6379/1"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"replicaz": 2}, "unknown"),
        ({"max_queue": "many"}, "max_queue"),
        ({"ui": "perhaps"}, "ui"),
        ({"replicas": 1.5}, "replicas"),
        ({"cache": "env:NOT_SET_ANYWHERE"}, "NOT_SET_ANYWHERE"),
        ({"cache": "memcached://x"}, "cache"),
    ],
)
def test_bad_builder_args_are_refused(args, message):
    with pytest.raises(ConfigError, match=message):
        parse_builder_args(args)


def test_only_the_registry_settings_are_forwarded():
    env = {"VOXSERVE_VOICE_STORE": "redis://r/0", "VOXSERVE_CLONE_PACK": "clone", "HOME": "/root", "X": "1"}
    assert forwarded_env(env) == {"VOXSERVE_VOICE_STORE": "redis://r/0", "VOXSERVE_CLONE_PACK": "clone"}


def test_app_builder_binds_without_a_cluster():
    from ray.serve import Application

    from voxserve.scale.ray_app import app

    built = app({"voice": "baker", "replicas": "2"})
    assert isinstance(built, Application)


def test_serve_ray_refuses_port_zero_before_starting_anything():
    from voxserve.scale.ray_app import serve_ray

    with pytest.raises(ConfigError, match="port"):
        serve_ray(ServerConfig(port=0), RayOptions())
