# Copyright: (c) 2025, genai_stack team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: check many HTTP endpoints concurrently, with retries and deadlines."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: endpoint_health
short_description: Check many HTTP endpoints concurrently, with retries, deadlines and auth
version_added: "0.1.0"
description:
  - Sends one request per endpoint, all endpoints at the same time, and checks each answer's
    status code and, optionally, its body (substring, a value at a JSON path, or a JSON
    container that must hold a value).
  - Each endpoint is retried until it is healthy or its O(endpoints[].deadline) passes (with
    exponential backoff between attempts), or, when the deadline is V(0), at most
    1 + O(endpoints[].retries) times. Connection refused, timeouts, TLS errors, an unexpected
    status and a body that does not match are all failures that are retried.
  - Speaks the credential forms of the stack's services, vLLM (bearer token), ComfyUI-Login
    (bearer or C(?token=)), Forge C(--api-auth) (HTTP Basic), the ai-dock Caddy layer
    (C(?token=)). Credentials never appear in results or messages; a C(?token=) value is
    shown as C(***).
  - Redirects are not followed; a 3xx status is compared as it is (a login redirect is not
    a healthy answer unless its status is listed in O(endpoints[].status)).
  - The module only reads, so it also runs in check mode, and it never reports a change.
author:
  - genai_stack team (@myia)
attributes:
  check_mode:
    support: full
    description: Runs the checks in check mode too (it only sends requests).
  diff_mode:
    support: none
    description: Nothing is changed, so there is no diff.
options:
  endpoints:
    description:
      - The endpoints to check. Options not set on an endpoint take the module-level value.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description:
          - Name used in results, in RV(failed_endpoints) and in the failure message.
          - Defaults to the URL (with credentials masked).
        type: str
      url:
        description: URL to request (C(http) or C(https)).
        type: str
        required: true
      method:
        description: HTTP method.
        type: str
        default: GET
      headers:
        description:
          - Extra request headers. Values of headers whose name contains C(authorization),
            C(token), C(key), C(secret), C(cookie) or C(password) are treated as secrets.
          - Prefer O(endpoints[].auth) for credentials.
        type: dict
      auth:
        description: Credentials to send.
        type: dict
        suboptions:
          type:
            description:
              - V(bearer) sends an C(Authorization) header C(Bearer <token>) (vLLM,
                ComfyUI-Login, Caddy).
              - V(basic) sends HTTP Basic C(username:password) (Forge C(--api-auth)).
              - V(query) adds C(<param>=<value>) to the query string (ComfyUI-Login and Caddy
                C(?token=)).
            type: str
            required: true
            choices: [bearer, basic, query]
          token:
            description: Bearer token. Required when O(endpoints[].auth.type=bearer).
            type: str
          username:
            description: User name. Required when O(endpoints[].auth.type=basic).
            type: str
          password:
            description: Password. Required when O(endpoints[].auth.type=basic).
            type: str
          param:
            description: Query parameter name for O(endpoints[].auth.type=query).
            type: str
            default: token
          value:
            description: Query parameter value. Required when O(endpoints[].auth.type=query).
            type: str
      body:
        description:
          - Request body. A string is sent as it is; any other value is sent as JSON (with a
            C(Content-Type) of C(application/json) unless O(endpoints[].headers) sets one).
        type: raw
      status:
        description: Status codes that count as healthy.
        type: list
        elements: int
        default: [200]
      json_path:
        description:
          - Dotted path into the JSON body; list elements by index, negative from the end
            (V(data.0.id), V(data.-1.id)). The empty string is the whole document.
          - Without O(endpoints[].json_value) the path must exist; with it, the value there
            must equal O(endpoints[].json_value).
        type: str
      json_value:
        description:
          - Expected value at O(endpoints[].json_path). A string also matches the JSON text
            of a number, boolean or null (V("200") matches C(200)). V(null) means only that the
            path must exist.
        type: raw
      json_contains:
        description:
          - The value at O(endpoints[].json_contains.path) must contain
            O(endpoints[].json_contains.value).
          - A string contains a substring. A list contains an equal element; among elements
            that are objects, an object value matches an element holding all its keys/values,
            and a scalar value matches an element having it among its values (V(qwen3-8b)
            matches a list of objects one of which has C(id) V(qwen3-8b), the shape of vLLM's
            C(/v1/models) C(data)).
            An object contains a key (scalar value) or a subset of its keys/values (object
            value).
        type: dict
        suboptions:
          path:
            description: Dotted path of the container, as for O(endpoints[].json_path).
            type: str
            default: ""
          value:
            description: The value the container must hold.
            type: raw
            required: true
      body_contains:
        description: A substring the body must contain.
        type: str
      timeout:
        description: Per-attempt timeout in seconds. Defaults to O(timeout).
        type: float
      deadline:
        description:
          - Seconds after which this endpoint stops being retried. Defaults to O(deadline).
          - V(0) means one attempt plus O(endpoints[].retries) retries.
        type: float
      retries:
        description:
          - Retries after a failed first attempt when the deadline is V(0). Defaults to
            O(retries).
        type: int
      delay:
        description: First delay between attempts, in seconds. Defaults to O(delay).
        type: float
  timeout:
    description: Default per-attempt timeout in seconds.
    type: float
    default: 10
  deadline:
    description:
      - Default deadline in seconds for each endpoint (its clock starts when its check
        starts). V(0) means one attempt plus O(retries) retries.
    type: float
    default: 0
  retries:
    description: Default number of retries when the deadline is V(0).
    type: int
    default: 0
  delay:
    description: Default first delay between attempts, in seconds.
    type: float
    default: 1
  backoff_factor:
    description: The delay is multiplied by this after each failed attempt.
    type: float
    default: 2
  max_delay:
    description: Upper bound of the delay between attempts, in seconds.
    type: float
    default: 10
  validate_certs:
    description: Verify TLS certificates and host names.
    type: bool
    default: true
  ca_path:
    description: PEM file of CA certificates to trust instead of the system ones.
    type: path
  use_proxy:
    description: Honour the C(http_proxy)/C(https_proxy)/C(no_proxy) environment variables.
    type: bool
    default: true
  max_workers:
    description: How many endpoints are checked at the same time.
    type: int
    default: 16
  fail_on_error:
    description:
      - Fail when any endpoint is unhealthy, with a message naming every failed endpoint, its
        URL, status and error. When V(false), report the results and do not fail.
    type: bool
    default: true
notes:
  - Runs on the target host (use C(delegate_to) to check from the controller). Needs only the
    Python standard library.
seealso:
  - module: ansible.builtin.uri
"""

EXAMPLES = r"""
- name: Wait up to 20 minutes for every vLLM model, then check ComfyUI and Forge
  myia.genai_stack.endpoint_health:
    deadline: 1200
    delay: 2
    max_delay: 15
    endpoints:
      - name: vllm-medium
        url: http://127.0.0.1:8000/v1/models
        auth: {type: bearer, token: "{{ vllm_api_key }}"}
        json_contains: {path: data, value: {id: qwen3-32b}}
      - name: vllm-medium-health
        url: http://127.0.0.1:8000/health
      - name: comfyui
        url: http://127.0.0.1:8188/system_stats
        auth: {type: bearer, token: "{{ comfyui_token }}"}
        json_path: devices.0.type
        json_value: cuda
      - name: forge
        url: http://127.0.0.1:17861/sdapi/v1/sd-models
        auth: {type: basic, username: forge, password: "{{ forge_password }}"}
        json_path: "0.model_name"
  no_log: false  # results hold no secret; credentials are no_log options

- name: Prove the old token is rejected (expect 401), through the ai-dock Caddy ?token=
  myia.genai_stack.endpoint_health:
    endpoints:
      - name: forge-old-token
        url: https://forge.example.org/sdapi/v1/options
        auth: {type: query, param: token, value: "{{ old_web_token }}"}
        status: [401, 302]
    ca_path: /etc/ssl/genai/ca.pem

- name: Report without failing, for a dashboard
  myia.genai_stack.endpoint_health:
    fail_on_error: false
    timeout: 3
    retries: 2
    endpoints: "{{ genai_health_endpoints }}"
  register: health

- name: Show what is down
  ansible.builtin.debug:
    msg: "{{ health.failed_endpoints }} ({{ health.summary.ok }}/{{ health.summary.total }} ok)"
"""

RETURN = r"""
endpoints:
  description: One result per endpoint, in the order of O(endpoints).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The endpoint's name.
      type: str
      sample: vllm-medium
    url:
      description: The URL, with user info and token query values shown as C(***).
      type: str
      sample: http://127.0.0.1:8188/system_stats?token=***
    ok:
      description: Whether the last attempt was healthy.
      type: bool
      sample: true
    status:
      description: HTTP status of the last attempt; null when no answer came.
      type: int
      sample: 200
    latency_ms:
      description: Duration of the last attempt in milliseconds.
      type: float
      sample: 12.5
    attempts:
      description: How many requests were sent.
      type: int
      sample: 3
    elapsed_s:
      description: Seconds from the first attempt to the result, sleeps included.
      type: float
      sample: 3.51
    error:
      description: Why the last attempt was not healthy; null when healthy. Holds no secret.
      type: str
      sample: status 503, expected 200 (after 4 attempts)
    body_snippet:
      description: The first 300 characters of the last answer's body, secrets masked.
      type: str
      sample: '{"object":"list","data":[{"id":"qwen3-8b"'
summary:
  description: Counts and total duration.
  returned: always
  type: dict
  contains:
    total:
      description: Number of endpoints.
      type: int
      sample: 4
    ok:
      description: Healthy endpoints.
      type: int
      sample: 3
    failed:
      description: Unhealthy endpoints.
      type: int
      sample: 1
    elapsed_s:
      description: Seconds for all the checks (they run concurrently).
      type: float
      sample: 4.02
failed_endpoints:
  description: Names of the unhealthy endpoints.
  returned: always
  type: list
  elements: str
  sample: [forge]
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.myia.genai_stack.plugins.module_utils.http_checks import (
    CheckDefinitionError,
    check_from_dict,
    failure_message,
    is_sensitive_header,
    run_checks,
    summarize,
)

AUTH_SPEC = {
    "type": {"type": "str", "required": True, "choices": ["bearer", "basic", "query"]},
    "token": {"type": "str", "no_log": True},
    "username": {"type": "str"},
    "password": {"type": "str", "no_log": True},
    "param": {"type": "str", "default": "token"},
    "value": {"type": "str", "no_log": True},
}

ENDPOINT_SPEC = {
    "name": {"type": "str"},
    "url": {"type": "str", "required": True},
    "method": {"type": "str", "default": "GET"},
    "headers": {"type": "dict"},
    "auth": {
        "type": "dict",
        "options": AUTH_SPEC,
        "required_if": [
            ("type", "bearer", ("token",)),
            ("type", "basic", ("username", "password")),
            ("type", "query", ("value",)),
        ],
    },
    "body": {"type": "raw"},
    "status": {"type": "list", "elements": "int", "default": [200]},
    "json_path": {"type": "str"},
    "json_value": {"type": "raw"},
    "json_contains": {
        "type": "dict",
        "options": {
            "path": {"type": "str", "default": ""},
            "value": {"type": "raw", "required": True},
        },
    },
    "body_contains": {"type": "str"},
    "timeout": {"type": "float"},
    "deadline": {"type": "float"},
    "retries": {"type": "int"},
    "delay": {"type": "float"},
}

# Module-level options that are defaults for every endpoint.
DEFAULT_KEYS = (
    "timeout",
    "deadline",
    "retries",
    "delay",
    "backoff_factor",
    "max_delay",
    "validate_certs",
    "ca_path",
    "use_proxy",
)

ARGUMENT_SPEC = {
    "endpoints": {"type": "list", "elements": "dict", "required": True, "options": ENDPOINT_SPEC},
    "timeout": {"type": "float", "default": 10.0},
    "deadline": {"type": "float", "default": 0.0},
    "retries": {"type": "int", "default": 0},
    "delay": {"type": "float", "default": 1.0},
    "backoff_factor": {"type": "float", "default": 2.0},
    "max_delay": {"type": "float", "default": 10.0},
    "validate_certs": {"type": "bool", "default": True},
    "ca_path": {"type": "path"},
    "use_proxy": {"type": "bool", "default": True},
    "max_workers": {"type": "int", "default": 16},
    "fail_on_error": {"type": "bool", "default": True},
}


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    defaults = {key: params[key] for key in DEFAULT_KEYS}

    for endpoint in params["endpoints"]:
        for hname, hvalue in (endpoint.get("headers") or {}).items():
            if is_sensitive_header(str(hname)) and hvalue:
                module.no_log_values.add(str(hvalue))
                parts = str(hvalue).split(None, 1)
                if len(parts) == 2 and len(parts[1]) >= 3:
                    module.no_log_values.add(parts[1])

    if params["max_workers"] < 1:
        module.fail_json(msg="max_workers must be at least 1")
    try:
        checks = [check_from_dict(endpoint, defaults) for endpoint in params["endpoints"]]
    except (CheckDefinitionError, TypeError, ValueError) as exc:
        module.fail_json(msg=f"invalid endpoint: {exc}")

    started = time.monotonic()
    results = run_checks(checks, max_workers=params["max_workers"])
    elapsed = time.monotonic() - started

    output = {
        "changed": False,
        "endpoints": [r.to_dict() for r in results],
        "summary": summarize(results, elapsed),
        "failed_endpoints": [r.name for r in results if not r.ok],
    }
    if output["failed_endpoints"] and params["fail_on_error"]:
        module.fail_json(msg=failure_message(results), **output)
    module.exit_json(**output)


if __name__ == "__main__":
    main()
