#!/bin/bash
# Slurm batch template for a jumps trajectory run across nodes.
#
# One-time setup on the cluster (use the cluster's MPI, NOT the mpich wheel):
#   module load python/3.11 openmpi          # your site's Python and MPI modules
#   python -m venv ~/venvs/jumps && source ~/venvs/jumps/bin/activate
#   pip install --no-binary=mpi4py mpi4py     # builds against the loaded MPI (needs mpicc)
#   pip install /path/to/jumps                # without the [mpi] extra
#   python -c "from mpi4py import MPI; print(MPI.Get_library_version())"   # check: your MPI
#
# Submit:   sbatch mpi_runs/slurm_job.sh mpi_runs/demo_tfim.toml results/demo
# Resume:   the same command after a crash or timeout: --resume keeps finished trajectories.
#SBATCH --job-name=jumps
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=32
#SBATCH --cpus-per-task=1
#SBATCH --time=02:00:00
#SBATCH --output=jumps-%j.out

set -euo pipefail
CONFIG=${1:?usage: sbatch slurm_job.sh CONFIG.toml OUTDIR}
OUT=${2:-results/$(basename "$CONFIG" .toml)}

module load python/3.11 openmpi        # adapt to your site
source ~/venvs/jumps/bin/activate

# One Numba cache per node: ranks on a node share it, nodes never race on a shared filesystem.
export NUMBA_CACHE_DIR=${TMPDIR:-/tmp}/numba-cache-$SLURM_JOB_ID
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1

# --resume continues an interrupted run in OUT (or starts one if there is none).
srun python -m jumps run "$CONFIG" --out "$OUT" --resume
srun -n 1 python -m analysis "$OUT" --plots || true
