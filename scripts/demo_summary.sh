#!/usr/bin/env bash
# Prints where the demo stack runs, read from the running containers.
set -euo pipefail
echo
echo "genai_stack demo is up:"
docker ps --filter label=io.myia.genai.service --format '{{.Names}}\t{{.Status}}\t{{.Label "io.myia.genai.service"}}' |
  while IFS=$'\t' read -r name status service; do
    printf '  %-24s %-10s %s\n' "$name" "$service" "$status"
  done
echo
echo "  vLLM OpenAI endpoints (URLs and key for clients in /opt/genai-demo/clients/genai.env):"
for f in /opt/genai-demo/vllm/compose.yaml; do
  [ -f "$f" ] && grep -oE -- '"--port", "[0-9]+"' "$f" | grep -oE '[0-9]+' | sed 's#^#    http://127.0.0.1:#; s#$#/v1#'
done
echo '  try: set -a; . /opt/genai-demo/clients/genai.env; set +a; curl -s -H "Authorization: Bearer $VLLM_API_KEY" $VLLM_BASE_URL/models'
