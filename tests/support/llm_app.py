"""Deploys the `llm` Serve app (ray.serve.llm + vLLM on CPU) onto the session's Ray cluster, next to Kubernaut.

The test process has no vLLM (it lives in its own venv, scripts/llm-server.sh vllm-build); the app is built in a
Ray task whose workers put that venv's site-packages first on their path (same Python and Ray version), and its
deployments carry the same runtime_env. The app's ingress is kubernaut.llm_handle.HandleIngress: the OpenAI
routes over HTTP plus ``chat_json`` for a DeploymentHandle caller. This module imports nothing heavy: the Ray
task runs it in the vLLM environment."""

from __future__ import annotations

from typing import Any


def deploy_llm_app(model_dir: str, runtime_env: dict[str, Any], name: str = "llm", route_prefix: str = "/llm",
                   max_model_len: int = 2048) -> str:
    from ray import serve
    from ray.serve.llm import LLMConfig, build_openai_app

    # No CPU reserved: the session's 2 CPUs are all reserved by its Kubernaut app (a replica asking for CPU is
    # never scheduled); the bundle reserves memory only. The ingress asks for nothing either.
    llm = LLMConfig(
        model_loading_config={"model_id": "smollm2-135m", "model_source": model_dir},
        accelerator_config={"kind": "cpu"},
        placement_group_config={"bundles": [{"memory": 512 * 1024 * 1024}]},
        deployment_config={"ray_actor_options": {"num_cpus": 0, "runtime_env": runtime_env}},
        engine_kwargs={"max_model_len": max_model_len, "dtype": "bfloat16", "enforce_eager": True},
    )
    app = build_openai_app({
        "llm_configs": [llm],
        "ingress_deployment_config": {"ray_actor_options": {"num_cpus": 0, "runtime_env": runtime_env}},
        "ingress_cls_config": {"ingress_cls": "kubernaut.llm_handle:HandleIngress"},
    })
    serve.run(app, name=name, route_prefix=route_prefix, blocking=False)
    return name
