"""The GPU plan: which service runs on which GPU, whether it fits, and in what order to start.

Every GPU service (each vLLM model, ComfyUI, Forge) states a wish; :func:`plan` checks all wishes
against the GPUs of the host before anything changes and returns per GPU the services and their
memory share sum, and per service its start wave. Services sharing a GPU start one after the other
(vLLM instances started together mis-count each other's memory); services on disjoint GPUs start
in parallel. Pure Python, no Ansible import, so filters, modules and the panel share it.

A wish is a mapping::

    {"service": "qwen3-mini",            # unique name
     "source": "vllm_qwen3_models[1]",   # the variable it comes from, for error messages
     "gpus": [2],                        # GPU indices
     "memory_share": 0.45,               # fraction of each GPU's memory it may take
     "tensor_parallel_size": 1,          # optional: must equal len(gpus)
     "port": 5001,                       # optional host port
     "bind_address": "127.0.0.1",        # optional
     "model": "Qwen/Qwen3-8B-AWQ",       # optional: the files it serves, shown in the table
     "revision": "4da05a8...",           # optional: the revision of those files (None: none)
     "pinned": True}                     # optional: whether the revision is a commit

A service with a ``model`` is listed under the GPU rows of the table with its files:
``Qwen/Qwen3-8B-AWQ@4da05a8`` (pinned: the first 7 digits of the commit), ``... (unpinned)``.
"""

from __future__ import annotations

from typing import Any


class GpuPlanError(ValueError):
    """Raised with every problem found, one per line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("GPU plan rejected:\n- " + "\n- ".join(problems))
        self.problems = problems


def _gpu_index(gpu: Any) -> int:
    return int(gpu["index"]) if isinstance(gpu, dict) else int(gpu)


def plan(
    wishes: list[dict[str, Any]],
    gpus: list[Any],
    ceiling: float = 1.0,
) -> dict[str, Any]:
    """Check ``wishes`` against ``gpus`` (indices or gpu_facts dicts) and return the plan.

    Raises :class:`GpuPlanError` listing every violation, each naming the service and variable.
    """
    problems: list[str] = []
    known = {_gpu_index(g): g for g in gpus}
    known_list = ", ".join(str(i) for i in sorted(known)) or "none"
    seen_names: dict[str, str] = {}
    seen_ports: dict[int, str] = {}
    usage: dict[int, list[tuple[str, float]]] = {i: [] for i in known}

    for wish in wishes:
        name = str(wish.get("service", ""))
        source = str(wish.get("source", name))
        where = f"service '{name}' ({source})"
        if not name:
            problems.append(f"{source}: a service needs a name")
        elif name in seen_names:
            problems.append(f"{where}: name already used by {seen_names[name]}")
        else:
            seen_names[name] = source

        port = wish.get("port")
        if port is not None:
            port = int(port)
            if not 1 <= port <= 65535:
                problems.append(f"{where}: port {port} is not a valid port ({source}.port)")
            elif port in seen_ports:
                problems.append(
                    f"{where}: port {port} is already used by {seen_ports[port]} ({source}.port)"
                )
            else:
                seen_ports[port] = where

        wanted = [int(i) for i in wish.get("gpus") or []]
        if len(set(wanted)) != len(wanted):
            problems.append(f"{where}: GPU listed twice in {wanted} ({source}.gpus)")
        tp = wish.get("tensor_parallel_size")
        if tp is not None and int(tp) != len(wanted):
            problems.append(
                f"{where}: tensor_parallel_size {tp} must equal the number of GPUs "
                f"{len(wanted)} ({source}.tensor_parallel_size / {source}.gpus)"
            )
        share = wish.get("memory_share")
        if wanted and share is None:
            problems.append(f"{where}: a memory share is required ({source}.memory_share)")
            share = 0.0
        share = float(share or 0.0)
        if wanted and not 0.0 < share <= 1.0:
            problems.append(f"{where}: memory share {share} must be in (0, 1] ({source})")
        for index in wanted:
            if index not in known:
                problems.append(
                    f"{where}: GPU {index} does not exist on this host (GPUs: {known_list}) "
                    f"({source}.gpus)"
                )
            else:
                usage[index].append((name, share))

    for index, users in sorted(usage.items()):
        total = round(sum(share for _, share in users), 6)
        if total > ceiling + 1e-9:
            names = ", ".join(f"{n} ({s:g})" for n, s in users)
            sources = ", ".join(seen_names.get(n, n) for n, _ in users)
            problems.append(
                f"GPU {index}: memory shares sum to {total:g}, over the ceiling {ceiling:g}: "
                f"{names} ({sources})"
            )
    if problems:
        raise GpuPlanError(problems)

    # Start waves: a service waits for the services declared before it on any of its GPUs.
    services: dict[str, dict[str, Any]] = {}
    last_on_gpu: dict[int, str] = {}
    for wish in wishes:
        name = str(wish["service"])
        wanted = [int(i) for i in wish.get("gpus") or []]
        after = sorted({last_on_gpu[i] for i in wanted if i in last_on_gpu})
        wave = 1 + max((services[a]["wave"] for a in after), default=-1)
        services[name] = {
            "gpus": wanted,
            "memory_share": float(wish.get("memory_share") or 0.0),
            "port": wish.get("port"),
            "after": after,
            "wave": wave,
            "source": wish.get("source", name),
        }
        if wish.get("model"):
            services[name].update(
                model=str(wish["model"]),
                revision=wish.get("revision") or None,
                pinned=bool(wish.get("pinned")),
            )
        for index in wanted:
            last_on_gpu[index] = name

    waves: list[list[str]] = []
    for name, svc in services.items():
        while len(waves) <= svc["wave"]:
            waves.append([])
        waves[svc["wave"]].append(name)

    gpu_rows = []
    for index in sorted(known):
        gpu = known[index]
        users = usage[index]
        gpu_rows.append(
            {
                "index": index,
                "name": gpu.get("name", "") if isinstance(gpu, dict) else "",
                "memory_total_mib": gpu.get("memory_total_mib") if isinstance(gpu, dict) else None,
                "services": [n for n, _ in users],
                "memory_share": round(sum(s for _, s in users), 6),
            }
        )
    result = {"gpus": gpu_rows, "services": services, "waves": waves, "ceiling": ceiling}
    result["table"] = table(result)
    return result


def table(result: dict[str, Any]) -> str:
    """A fixed-width text table of the plan, for admins."""
    rows = [("GPU", "name", "share", "services (start wave)")]
    for gpu in result["gpus"]:
        names = ", ".join(f"{n} (w{result['services'][n]['wave']})" for n in gpu["services"])
        rows.append(
            (str(gpu["index"]), gpu["name"] or "-", f"{gpu['memory_share']:.2f}", names or "-")
        )
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [
        "  ".join(cell.ljust(widths[i]) if i < 3 else cell for i, cell in enumerate(row)).rstrip()
        for row in rows
    ]
    return "\n".join(lines + files(result))


def weights(service: dict[str, Any]) -> str:
    """The files a service serves: ``model@commit`` (7 digits) when pinned, else unpinned."""
    if service.get("pinned"):
        return f"{service['model']}@{str(service['revision'])[:7]}"
    if service.get("revision"):
        return f"{service['model']}@{service['revision']} (unpinned: not a commit)"
    return f"{service['model']} (unpinned)"


def files(result: dict[str, Any]) -> list[str]:
    """The table's rows of the services that name their model files, pinned or not."""
    rows = [(name, weights(svc)) for name, svc in result["services"].items() if svc.get("model")]
    if not rows:
        return []
    rows.insert(0, ("service", "model@revision"))
    width = max(len(name) for name, _ in rows)
    return [f"{name.ljust(width)}  {text}" for name, text in rows]
