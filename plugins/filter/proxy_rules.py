from __future__ import annotations

DOCUMENTATION = r"""
name: proxy_rules
short_description: Reverse-proxy rules from the service model, one computation for IIS and nginx
version_added: 0.1.0
description:
  - Turns the service records of the one service model (the C(genai_services) filter) into one
    rule per published service, which the C(iis_reverse_proxy) role renders as a web.config and
    the C(nginx_reverse_proxy) role as an nginx server. No role keeps a second list of hostnames.
  - Each rule holds C(name), C(id) (safe for file and site names), C(kind), C(auth),
    C(hostname) (lower case), C(public_url), C(backend_url) (as reachable from the proxy),
    C(backend_scheme), C(backend_host), C(backend_port), C(health_path), C(websockets) (each with
    C(path), C(regex) and C(relative_regex)), C(websocket_paths), C(max_body_mb),
    C(max_body_bytes), C(timeout_s), C(timeout_hms), C(streaming), C(buffering),
    C(preserve_host), C(headers) (each with C(name), C(value), C(server_variable)) and
    C(certificate).
  - Records written by hand may leave out what their kind implies (health path, websocket paths,
    body limit, timeout, streaming); the kind's values fill them in. C(backend_url) defaults to
    C(http://<bind_address>:<port>).
  - Fails, before anything changes, on records that are not services, a name or hostname used
    twice, a published or overridden name absent from the service model, a certificate for a
    hostname no service has, or a published hostname without a certificate; each message names
    the variable (C(<prefix>_services[i].hostname), C(<prefix>_certificates['host']), ...).
options:
  _input:
    description: The service records (C(genai_services)).
    type: list
    elements: dict
    required: true
  prefix:
    description: Prefix of the calling role's variables, used in messages (C(nginx_reverse_proxy)).
    type: str
    required: true
  certificate_kind:
    description:
      - C(thumbprint) (IIS, 40 hex digits, spaces and colons dropped, upper-cased) or
        C(files) (nginx, a dict with absolute C(certificate) and C(key) paths).
    type: str
    choices: [thumbprint, files]
    required: true
  publish:
    description: Names of the services to publish; empty means every service with a hostname.
    type: list
    elements: str
  overrides:
    description:
      - Per service name, values replacing the record's C(backend_url), C(max_body_mb),
        C(timeout_s), C(streaming) or C(websocket_paths).
    type: dict
  backend_host:
    description: Host the proxy reaches every backend on, instead of the one in C(backend_url).
    type: str
  certificates:
    description: Certificate per public hostname (form given by O(certificate_kind)).
    type: dict
  default_certificate:
    description: Certificate of the hostnames absent from O(certificates).
    type: raw
  https_port:
    description: Public HTTPS port (part of C(public_url) and C(X-Forwarded-Host) when not 443).
    type: int
    default: 443
"""

EXAMPLES = r"""
- name: Compute the nginx rules of every service with a hostname
  ansible.builtin.set_fact:
    nginx_reverse_proxy_rules: >-
      {{ genai_services | myia.genai_stack.proxy_rules(
           prefix='nginx_reverse_proxy', certificate_kind='files',
           default_certificate={'certificate': '/etc/ssl/genai.pem', 'key': '/etc/ssl/private/genai.key'}) }}

- name: Compute the IIS rules, reaching the backends in WSL2 through localhost
  ansible.builtin.set_fact:
    iis_reverse_proxy_rules: >-
      {{ genai_services | myia.genai_stack.proxy_rules(
           prefix='iis_reverse_proxy', certificate_kind='thumbprint', backend_host='localhost',
           certificates={'turbo.stable-diffusion-webui-forge.myia.io': '0123456789ABCDEF0123456789ABCDEF01234567'}) }}
"""

RETURN = r"""
_value:
  description: One rule per published service, in the order of the service records.
  type: list
  elements: dict
"""

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.myia.genai_stack.plugins.module_utils import proxy_rules as rules


def proxy_rules(
    records: Any, prefix: str, certificate_kind: str, **options: Any
) -> list[dict[str, Any]]:
    """:func:`rules.compute`, whose keywords the options are (publish, overrides, backend_host,
    certificates, default_certificate, https_port); its errors as filter errors."""
    options["https_port"] = int(options.get("https_port", 443))
    try:
        return rules.compute(records, prefix, certificate_kind=certificate_kind, **options)
    except rules.ProxyRulesError as exc:
        raise AnsibleFilterError(str(exc)) from exc


class FilterModule:
    def filters(self) -> dict[str, object]:
        return {"proxy_rules": proxy_rules}
