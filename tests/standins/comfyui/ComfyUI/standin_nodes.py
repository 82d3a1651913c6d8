"""Node catalogue, prompt validation and fake execution of the ComfyUI stand-in.

Test double only. It knows the handful of core nodes a Qwen-Image-Edit workflow uses, validates a
prompt the way ComfyUI's ``execution.validate_prompt`` does (same error types, messages and
``node_errors`` shape), lists the model files that are really on disk (so a workflow naming a
model the deployment did not fetch fails with ``value_not_in_list``) and "executes" a prompt by
writing a small valid PNG for every output node. Standard library only.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import zlib
from collections.abc import Iterable
from typing import Any

JsonDict = dict[str, Any]

# folder_paths: a model kind and the directories (under models/) it is listed from
MODEL_FOLDERS: dict[str, list[str]] = {
    "checkpoints": ["checkpoints"],
    "diffusion_models": ["unet", "diffusion_models"],
    "text_encoders": ["text_encoders", "clip"],
    "vae": ["vae"],
    "loras": ["loras"],
    "clip_vision": ["clip_vision"],
    "upscale_models": ["upscale_models"],
    "embeddings": ["embeddings"],
}
MODEL_EXTENSIONS = (".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp")

SAMPLERS = ["euler", "euler_ancestral", "heun", "dpmpp_2m", "dpmpp_2m_sde", "res_multistep", "lcm"]
SCHEDULERS = ["simple", "sgm_uniform", "karras", "exponential", "normal", "beta"]
CLIP_TYPES = [
    "stable_diffusion",
    "stable_cascade",
    "sd3",
    "stable_audio",
    "mochi",
    "ltxv",
    "pixart",
    "cosmos",
    "lumina2",
    "wan",
    "hidream",
    "chroma",
    "ace",
    "omnigen2",
    "qwen_image",
    "hunyuan_image",
]
WEIGHT_DTYPES = ["default", "fp8_e4m3fn", "fp8_e4m3fn_fast", "fp8_e5m2"]
UPSCALE_METHODS = ["nearest-exact", "bilinear", "area", "bicubic", "lanczos"]

INT = ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF})
SIZE = ("INT", {"default": 1024, "min": 16, "max": 16384, "step": 16})
BATCH = ("INT", {"default": 1, "min": 1, "max": 4096})
STEPS = ("INT", {"default": 20, "min": 1, "max": 10000})
CFG = ("FLOAT", {"default": 8.0, "min": 0.0, "max": 100.0, "step": 0.1})
DENOISE = ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01})
STRENGTH = ("FLOAT", {"default": 1.0, "min": -100.0, "max": 100.0, "step": 0.01})
SHIFT = ("FLOAT", {"default": 1.73, "min": 0.0, "max": 100.0, "step": 0.01})
MEGAPIXELS = ("FLOAT", {"default": 1.0, "min": 0.01, "max": 16.0, "step": 0.01})
TEXT = ("STRING", {"multiline": True, "dynamicPrompts": True})


def _combo(kind: str) -> str:
    """Placeholder for a combo listing the model files of ``kind`` (filled per request)."""
    return f"@models:{kind}"


# class_type -> definition. Inputs: a type name (link), a (type, options) tuple (widget), a list
# (fixed combo), or an "@models:<kind>" / "@input_images" placeholder (combo read from disk).
NODES: dict[str, JsonDict] = {
    "LoadImage": {
        "required": {"image": "@input_images"},
        "output": ["IMAGE", "MASK"],
        "category": "image",
        "display": "Load Image",
    },
    "SaveImage": {
        "required": {"images": "IMAGE", "filename_prefix": ("STRING", {"default": "ComfyUI"})},
        "output": [],
        "output_node": True,
        "category": "image",
        "display": "Save Image",
    },
    "PreviewImage": {
        "required": {"images": "IMAGE"},
        "output": [],
        "output_node": True,
        "category": "image",
        "display": "Preview Image",
    },
    "UNETLoader": {
        "required": {"unet_name": _combo("diffusion_models"), "weight_dtype": WEIGHT_DTYPES},
        "output": ["MODEL"],
        "category": "advanced/loaders",
        "display": "Load Diffusion Model",
    },
    "CLIPLoader": {
        "required": {"clip_name": _combo("text_encoders"), "type": CLIP_TYPES},
        "optional": {"device": ["default", "cpu"]},
        "output": ["CLIP"],
        "category": "advanced/loaders",
        "display": "Load CLIP",
    },
    "VAELoader": {
        "required": {"vae_name": _combo("vae")},
        "output": ["VAE"],
        "category": "loaders",
        "display": "Load VAE",
    },
    "CheckpointLoaderSimple": {
        "required": {"ckpt_name": _combo("checkpoints")},
        "output": ["MODEL", "CLIP", "VAE"],
        "category": "loaders",
        "display": "Load Checkpoint",
    },
    "LoraLoaderModelOnly": {
        "required": {"model": "MODEL", "lora_name": _combo("loras"), "strength_model": STRENGTH},
        "output": ["MODEL"],
        "category": "loaders",
        "display": "LoraLoaderModelOnly",
    },
    "ModelSamplingAuraFlow": {
        "required": {"model": "MODEL", "shift": SHIFT},
        "output": ["MODEL"],
        "category": "advanced/model",
        "display": "ModelSamplingAuraFlow",
    },
    "CFGNorm": {
        "required": {"model": "MODEL", "strength": STRENGTH},
        "output": ["MODEL"],
        "category": "advanced/guidance",
        "display": "CFGNorm",
    },
    "TextEncodeQwenImageEdit": {
        "required": {"clip": "CLIP", "prompt": TEXT},
        "optional": {"vae": "VAE", "image": "IMAGE"},
        "output": ["CONDITIONING"],
        "category": "advanced/conditioning",
        "display": "TextEncodeQwenImageEdit",
    },
    "CLIPTextEncode": {
        "required": {"text": TEXT, "clip": "CLIP"},
        "output": ["CONDITIONING"],
        "category": "conditioning",
        "display": "CLIP Text Encode (Prompt)",
    },
    "ImageScaleToTotalPixels": {
        "required": {"image": "IMAGE", "upscale_method": UPSCALE_METHODS, "megapixels": MEGAPIXELS},
        "output": ["IMAGE"],
        "category": "image/upscaling",
        "display": "Scale Image to Total Pixels",
    },
    "VAEEncode": {
        "required": {"pixels": "IMAGE", "vae": "VAE"},
        "output": ["LATENT"],
        "category": "latent",
        "display": "VAE Encode",
    },
    "VAEDecode": {
        "required": {"samples": "LATENT", "vae": "VAE"},
        "output": ["IMAGE"],
        "category": "latent",
        "display": "VAE Decode",
    },
    "EmptyLatentImage": {
        "required": {"width": SIZE, "height": SIZE, "batch_size": BATCH},
        "output": ["LATENT"],
        "category": "latent",
        "display": "Empty Latent Image",
    },
    "EmptySD3LatentImage": {
        "required": {"width": SIZE, "height": SIZE, "batch_size": BATCH},
        "output": ["LATENT"],
        "category": "latent/sd3",
        "display": "EmptySD3LatentImage",
    },
    "KSampler": {
        "required": {
            "model": "MODEL",
            "seed": INT,
            "steps": STEPS,
            "cfg": CFG,
            "sampler_name": SAMPLERS,
            "scheduler": SCHEDULERS,
            "positive": "CONDITIONING",
            "negative": "CONDITIONING",
            "latent_image": "LATENT",
            "denoise": DENOISE,
        },
        "output": ["LATENT"],
        "category": "sampling",
        "display": "KSampler",
    },
}
# Nodes whose custom VALIDATE_INPUTS replaces the combo check of the named input.
CUSTOM_VALIDATED = {"LoadImage": "image"}


class Folders:
    """The directories of one ComfyUI installation (folder_paths)."""

    def __init__(self, base: str) -> None:
        self.base = os.path.abspath(base)
        self.models = os.path.join(self.base, "models")
        self.input = os.path.join(self.base, "input")
        self.output = os.path.join(self.base, "output")
        self.temp = os.path.join(self.base, "temp")
        self.user = os.path.join(self.base, "user")

    def by_type(self, kind: str) -> str | None:
        return {"output": self.output, "input": self.input, "temp": self.temp}.get(kind)

    def model_files(self, kind: str) -> list[str]:
        """Model files of ``kind``, relative to their folder, sorted, as ComfyUI lists them."""
        found: set[str] = set()
        for folder in MODEL_FOLDERS.get(kind, [kind]):
            root = os.path.join(self.models, folder)
            found.update(_walk(root, MODEL_EXTENSIONS))
        return sorted(found)

    def input_images(self) -> list[str]:
        return sorted(_walk(self.input, IMAGE_EXTENSIONS))

    def all_models(self) -> dict[str, list[str]]:
        return {kind: self.model_files(kind) for kind in MODEL_FOLDERS}


def _walk(root: str, extensions: Iterable[str]) -> list[str]:
    exts = tuple(extensions)
    out: list[str] = []
    if not os.path.isdir(root):
        return out
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if name.lower().endswith(exts):
                rel = os.path.relpath(os.path.join(dirpath, name), root)
                out.append(rel.replace(os.sep, "/"))
    return out


# --------------------------------------------------------------------------------------------
# object_info


def _resolve(spec: Any, folders: Folders) -> Any:
    if isinstance(spec, str) and spec.startswith("@models:"):
        return folders.model_files(spec.split(":", 1)[1])
    if spec == "@input_images":
        return folders.input_images()
    return spec


def _input_info(spec: Any, folders: Folders) -> list[Any]:
    spec = _resolve(spec, folders)
    if isinstance(spec, list):
        return [spec, {}]
    if isinstance(spec, tuple):
        return [spec[0], dict(spec[1])]
    return [spec]


def object_info(folders: Folders, only: str | None = None) -> JsonDict:
    out: JsonDict = {}
    for name, node in NODES.items():
        if only is not None and name != only:
            continue
        inputs: JsonDict = {
            "required": {k: _input_info(v, folders) for k, v in node["required"].items()}
        }
        if node.get("optional"):
            inputs["optional"] = {k: _input_info(v, folders) for k, v in node["optional"].items()}
        if name == "LoadImage":
            inputs["required"]["image"][1]["image_upload"] = True
        out[name] = {
            "input": inputs,
            "input_order": {k: list(v) for k, v in inputs.items()},
            "output": list(node["output"]),
            "output_is_list": [False] * len(node["output"]),
            "output_name": list(node["output"]),
            "name": name,
            "display_name": node["display"],
            "description": "",
            "python_module": "nodes",
            "category": node["category"],
            "output_node": bool(node.get("output_node")),
        }
    return out


# --------------------------------------------------------------------------------------------
# validation (execution.validate_prompt)


def _error(kind: str, message: str, details: str = "", extra: JsonDict | None = None) -> JsonDict:
    return {"type": kind, "message": message, "details": details, "extra_info": extra or {}}


def _is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2


class Validator:
    def __init__(self, prompt: JsonDict, folders: Folders) -> None:
        self.prompt = prompt
        self.folders = folders
        self.validated: dict[str, tuple[bool, list[JsonDict], str]] = {}

    def node(self, unique_id: str) -> tuple[bool, list[JsonDict], str]:
        if unique_id in self.validated:
            return self.validated[unique_id]
        node = self.prompt[unique_id]
        class_type = node["class_type"]
        definition = NODES[class_type]
        inputs = node.get("inputs", {})
        if not isinstance(inputs, dict):
            inputs = {}
        errors: list[JsonDict] = []
        valid = True
        self.validated[unique_id] = (True, [], unique_id)  # cycles: assume valid meanwhile
        specs = dict(definition["required"])
        specs.update(definition.get("optional", {}))
        for name, spec in specs.items():
            if name not in inputs:
                if name in definition["required"]:
                    errors.append(
                        _error(
                            "required_input_missing",
                            "Required input is missing",
                            name,
                            {"input_name": name},
                        )
                    )
                    valid = False
                continue
            value = inputs[name]
            info = _input_info(spec, self.folders)
            input_type = info[0]
            if _is_link(value):
                ok, link_errors = self._link(name, value, input_type, info)
                errors.extend(link_errors)
                valid = valid and ok
                continue
            problem = self._value(class_type, name, value, info)
            if problem is not None:
                errors.append(problem)
                valid = False
        result = (valid and not errors, errors, unique_id)
        self.validated[unique_id] = result
        return result

    def _link(
        self, name: str, value: list[Any], input_type: Any, info: list[Any]
    ) -> tuple[bool, list[JsonDict]]:
        source_id = str(value[0])
        slot = value[1]
        if source_id not in self.prompt or not isinstance(slot, int):
            details = f"{name}, {value}"
            return False, [
                _error(
                    "bad_linked_input",
                    "Bad linked input, must be a length-2 list of [node_id, slot_index]",
                    details,
                    {"input_name": name, "input_config": info, "received_value": value},
                )
            ]
        source_type = self.prompt[source_id].get("class_type")
        outputs = NODES.get(source_type, {}).get("output", [])
        if slot >= len(outputs):
            return False, [
                _error(
                    "return_type_mismatch",
                    "Return type mismatch between linked nodes",
                    f"{name}, output slot {slot} does not exist on {source_type}",
                    {"input_name": name, "input_config": info, "received_value": value},
                )
            ]
        received = outputs[slot]
        if (
            isinstance(input_type, str)
            and received != input_type
            and "*"
            not in (
                received,
                input_type,
            )
        ):
            return False, [
                _error(
                    "return_type_mismatch",
                    "Return type mismatch between linked nodes",
                    f"{name}, received_type({received}) mismatch input_type({input_type})",
                    {
                        "input_name": name,
                        "input_config": info,
                        "received_type": received,
                        "linked_node": value,
                    },
                )
            ]
        ok, _, _ = self.node(source_id)
        return ok, []

    def _value(self, class_type: str, name: str, value: Any, info: list[Any]) -> JsonDict | None:
        input_type = info[0]
        options = info[1] if len(info) > 1 else {}
        if CUSTOM_VALIDATED.get(class_type) == name:
            if class_type == "LoadImage" and not os.path.isfile(
                os.path.join(self.folders.input, str(value))
            ):
                return _error(
                    "custom_validation_failed",
                    "Custom validation failed for node",
                    f"{name} - Invalid image file: {value}",
                    {"input_name": name, "input_config": info, "received_value": value},
                )
            return None
        if isinstance(input_type, list):
            if value not in input_type:
                shown = input_type if len(input_type) <= 20 else [*input_type[:20], "..."]
                return _error(
                    "value_not_in_list",
                    "Value not in list",
                    f"{name}: '{value}' not in {shown}",
                    {"input_name": name, "input_config": info, "received_value": value},
                )
            return None
        converters = {"INT": int, "FLOAT": float, "STRING": str, "BOOLEAN": bool}
        if input_type in converters:
            try:
                converted = converters[input_type](value)
            except (TypeError, ValueError) as exc:
                return _error(
                    "invalid_input_type",
                    f"Failed to convert an input value to a {input_type} value",
                    f"{name}, {value}, {exc}",
                    {"input_name": name, "input_config": info, "received_value": value},
                )
            if input_type in ("INT", "FLOAT"):
                low, high = options.get("min"), options.get("max")
                if low is not None and converted < low:
                    return _error(
                        "value_smaller_than_min",
                        f"Value {converted} smaller than min of {low}",
                        f"{name}",
                        {"input_name": name, "input_config": info, "received_value": converted},
                    )
                if high is not None and converted > high:
                    return _error(
                        "value_bigger_than_max",
                        f"Value {converted} bigger than max of {high}",
                        f"{name}",
                        {"input_name": name, "input_config": info, "received_value": converted},
                    )
            return None
        # a link-only input given a constant
        return _error(
            "invalid_input_type",
            f"Failed to convert an input value to a {input_type} value",
            f"{name}, {value}, expected a link",
            {"input_name": name, "input_config": info, "received_value": value},
        )


def validate_prompt(prompt: Any, folders: Folders) -> tuple[bool, JsonDict, list[str], JsonDict]:
    """Return (valid, error, good output ids, node_errors), like execution.validate_prompt."""
    if not isinstance(prompt, dict):
        return (
            False,
            _error("invalid_prompt", "Invalid prompt", "the prompt must be an object"),
            [],
            {},
        )
    outputs: list[str] = []
    for node_id, node in prompt.items():
        if not isinstance(node, dict) or "class_type" not in node:
            error = _error(
                "invalid_prompt",
                "Cannot execute because a node is missing the class_type property.",
                f"Node ID '#{node_id}'",
            )
            return False, error, [], {}
        class_type = node["class_type"]
        if class_type not in NODES:
            title = (node.get("_meta") or {}).get("title", class_type)
            error = _error(
                "missing_node_type",
                f"Node '{title}' not found. The custom node may not be installed.",
                f"Node ID '#{node_id}'",
                {"node_id": node_id, "class_type": class_type, "node_title": title},
            )
            return False, error, [], {}
        if NODES[class_type].get("output_node"):
            outputs.append(node_id)
    if not outputs:
        return False, _error("prompt_no_outputs", "Prompt has no outputs"), [], {}

    validator = Validator(prompt, folders)
    good: list[str] = []
    for output in outputs:
        try:
            ok, _, _ = validator.node(output)
        except (KeyError, TypeError, AttributeError) as exc:
            ok = False
            validator.validated[output] = (
                False,
                [
                    _error(
                        "exception_during_validation",
                        "Exception when validating node",
                        str(exc),
                        {"exception_type": type(exc).__name__, "traceback": []},
                    )
                ],
                output,
            )
        if ok:
            good.append(output)

    node_errors: JsonDict = {}
    for output in outputs:
        if output in good:
            continue
        for node_id, (ok, reasons, _) in validator.validated.items():
            if ok or not reasons:
                continue
            entry = node_errors.setdefault(
                node_id,
                {
                    "errors": reasons,
                    "dependent_outputs": [],
                    "class_type": prompt[node_id]["class_type"],
                },
            )
            if output not in entry["dependent_outputs"]:
                entry["dependent_outputs"].append(output)
    if not good:
        error = _error("prompt_outputs_failed_validation", "Prompt outputs failed validation")
        return False, error, [], node_errors
    return True, {}, good, node_errors


# --------------------------------------------------------------------------------------------
# fake execution


def png_bytes(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A valid, solid-colour, 8-bit RGB PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


def _colour(prompt: JsonDict) -> tuple[int, int, int]:
    digest = hashlib.sha256(json.dumps(prompt, sort_keys=True).encode()).digest()
    return digest[0], digest[1], digest[2]


def _next_counter(directory: str, prefix: str) -> int:
    highest = 0
    if os.path.isdir(directory):
        for name in os.listdir(directory):
            if name.startswith(prefix + "_") and name.endswith("_.png"):
                middle = name[len(prefix) + 1 : -5]
                if middle.isdigit():
                    highest = max(highest, int(middle))
    return highest + 1


def execute(prompt: JsonDict, outputs: list[str], folders: Folders) -> JsonDict:
    """Write one small PNG per output node; return the history ``outputs`` mapping."""
    colour = _colour(prompt)
    result: JsonDict = {}
    for node_id in outputs:
        node = prompt[node_id]
        if node["class_type"] == "SaveImage":
            kind, base = "output", folders.output
            prefix = str(node.get("inputs", {}).get("filename_prefix", "ComfyUI"))
        else:
            kind, base = "temp", folders.temp
            prefix = "ComfyUI_temp_" + hashlib.sha1(node_id.encode()).hexdigest()[:5]
        subfolder, name = os.path.split(prefix)
        subfolder = subfolder.strip("/")
        directory = os.path.join(base, subfolder)
        os.makedirs(directory, exist_ok=True)
        filename = f"{name}_{_next_counter(directory, name):05}_.png"
        with open(os.path.join(directory, filename), "wb") as handle:
            handle.write(png_bytes(64, 64, colour))
        result[node_id] = {"images": [{"filename": filename, "subfolder": subfolder, "type": kind}]}
    return result
