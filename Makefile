# genai_stack: the two commands from a fresh machine are `make demo` and `make test`.
SHELL := /bin/bash
VENV := .venv/bin
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/.venv/bin:$(PATH)

.PHONY: setup demo demo-down test lint unit molecule bench mutate

setup:  ## docker engine, compose v2, venv, collections, base and stand-in images (cached)
	@bash scripts/setup.sh

demo: setup  ## the whole stack on the local docker with stand-ins
	ansible-playbook site.yml -l gpu-host
	@bash scripts/demo_summary.sh

demo-down:
	ansible-playbook site.yml -l gpu-host --tags vllm,comfyui,forge,gateway -e vllm_qwen3_state=absent -e comfyui_qwen_auth_state=absent -e forge_turbo_state=absent -e openai_gateway_state=absent

test: setup  ## everything CI runs: lint, unit tests, molecule scenarios
	@bash scripts/test.sh

lint: setup
	@bash scripts/test.sh lint

unit: setup
	@bash scripts/test.sh unit

molecule: setup
	@bash scripts/test.sh molecule

bench: setup
	$(VENV)/python bench/site_rerun_bench.py
	$(VENV)/python bench/compose_engine_bench.py
	$(VENV)/python bench/many_hosts_bench.py
	$(VENV)/python bench/status_bench.py
	$(VENV)/python bench/gateway_bench.py

mutate: setup  ## mutation testing of plugins/module_utils and plugins/filter (mutmut): score per file, survivors
	@bash scripts/mutate.sh
