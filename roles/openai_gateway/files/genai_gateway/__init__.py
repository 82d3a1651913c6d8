"""genai_gateway: the OpenAI gateway of a genai_stack GPU host. One OpenAI-compatible endpoint in
front of every vLLM server of the host, routing on the request's ``model``, with a key per
client, per-client model allow-lists and rates, and usage per day, client and model.

Run as ``python3 -m genai_gateway`` (see ``__main__``); modules: ``config`` (the JSON file),
``auth`` (keys and rates), ``usage`` (the usage file and the metrics), ``errors`` (OpenAI's
error objects), ``app`` (the HTTP side)."""

__version__ = "1.0.0"
